"""docker-compose.yml against the Compose specification, and the stack Hookline needs in it.

The schema is the Compose specification's own ``compose-spec.json``, as check-jsonschema ships
it (``check_jsonschema/builtin_schemas/vendor/``): no network at test time.
"""

from __future__ import annotations

import itertools
import json
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from temporalio.common import SearchAttributeIndexedValueType

from hookline.cli.main import main
from hookline.contracts import search_attributes as sa

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
SETUP_SCRIPT = ROOT / "deploy" / "temporal" / "setup.sh"
POSTGRES_INIT = ROOT / "deploy" / "postgres-init" / "10-hookline.sql"
ENV = {"HOOKLINE_API_KEYS": "key-one", "HOOKLINE_SECRETS_KEYS": "k1:c2VjcmV0"}
"""What the file's header asks an operator to export."""
CONDITIONS = {"healthy": "service_healthy", "done": "service_completed_successfully"}
"""The words of the header's start order, as ``depends_on`` conditions."""

# Compose's interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default},
# ${VAR:?error}, ${VAR?error}, ${VAR:+alternative}, ${VAR+alternative}.
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>\w+)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_]\w*))"
)


class MissingVariableError(Exception):
    """A ``${VAR:?error}`` whose variable is not set: compose refuses the file."""


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """``value`` (a parsed compose file or part of it) with its strings interpolated.

    Raises:
        MissingVariableError: a required variable is unset (or empty, for ``:?``).
    """
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        op, arg = match["op"] or "", match["arg"] or ""
        is_set = name in env and not (op.startswith(":") and env[name] == "")
        if op.endswith("-"):
            return env[name] if is_set else arg
        if op.endswith("?"):
            if not is_set:
                raise MissingVariableError(f"{name}: {arg}")
            return env[name]
        if op.endswith("+"):
            return arg if is_set else ""
        return env.get(name, "")

    return _VARIABLE.sub(substitute, value)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(raw: dict[str, Any]) -> dict[str, Any]:
    """The services as compose runs them, with the header's variables exported."""
    return dict(interpolate(raw, ENV)["services"])


def _schema_errors(document: Any) -> list[str]:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / "compose-spec.json").read_text())
    Draft202012Validator.check_schema(schema)
    errors = Draft202012Validator(schema).iter_errors(document)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def test_compose_file_follows_the_compose_specification(raw: dict[str, Any]) -> None:
    assert _schema_errors(raw) == []
    assert _schema_errors(interpolate(raw, ENV)) == []


def test_the_schema_check_catches_a_broken_file(raw: dict[str, Any]) -> None:
    broken = interpolate(raw, ENV)
    broken["services"]["worker"]["depends_on"]["api"]["condition"] = "service_ready"
    broken["services"]["api"]["healthcheck"]["intervall"] = "5s"
    errors = _schema_errors(broken)
    assert any(e.startswith("services/worker") and "depends_on" in e for e in errors), errors
    assert any("intervall" in e for e in errors), errors


@pytest.mark.parametrize("unset", sorted(ENV))
def test_compose_refuses_to_start_without_the_keys(raw: dict[str, Any], unset: str) -> None:
    with pytest.raises(MissingVariableError, match=unset):
        interpolate(raw, {name: value for name, value in ENV.items() if name != unset})


def test_every_service_hookline_needs_is_there(services: dict[str, Any]) -> None:
    assert set(services) == {
        "postgresql",
        "temporal-schema",
        "temporal",
        "temporal-setup",
        "temporal-ui",
        "api",
        "worker",
    }
    assert services["postgresql"]["image"].startswith("postgres:")

    server = services["temporal"]
    assert server["image"].startswith("temporalio/server:")
    assert server["environment"]["DB"] == "postgres12"
    assert server["environment"]["POSTGRES_SEEDS"] == "postgresql"
    server_version = server["image"].partition(":")[2]
    for one_shot in ("temporal-schema", "temporal-setup"):
        # The admin tools' schemas and CLI match the server they set up.
        assert services[one_shot]["image"] == f"temporalio/admin-tools:{server_version}"

    ui = services["temporal-ui"]
    assert ui["image"].startswith("temporalio/ui:")
    assert ui["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    # The browser calls the codec, so it must be the API's port as published on the host, and
    # the API must let the UI's origin call it.
    api_port = _published_port(services["api"], 8000)
    assert ui["environment"]["TEMPORAL_CODEC_ENDPOINT"] == f"http://localhost:{api_port}/codec"
    ui_port = _published_port(ui, 8080)
    origins = services["api"]["environment"]["HOOKLINE_CODEC_CORS_ORIGINS"].split(",")
    assert f"http://localhost:{ui_port}" in origins

    for name in ("api", "worker"):
        service = services[name]
        assert service["build"] == "." and (ROOT / "Dockerfile").is_file()
        assert service["image"] == "hookline:latest"
        env = service["environment"]
        assert env["HOOKLINE_MODE"] == "production"
        assert env["HOOKLINE_TEMPORAL_ADDRESS"] == "temporal:7233"
        assert "@postgresql:5432/hookline" in env["HOOKLINE_DATABASE_URL"]
        assert env["HOOKLINE_SECRETS_KEYS"] == ENV["HOOKLINE_SECRETS_KEYS"]
        assert "HOOKLINE_PAYLOAD_KEYS" in env  # the same for both, or encryption breaks reads
    assert services["api"]["environment"]["HOOKLINE_API_KEYS"] == ENV["HOOKLINE_API_KEYS"]


def _published_port(service: dict[str, Any], container_port: int) -> str:
    """The host port that ``service`` publishes ``container_port`` on (short syntax)."""
    for port in service.get("ports", []):
        *_, host, target = str(port).split(":")
        if target == str(container_port):
            return host
    raise AssertionError(f"{container_port} is not published: {service.get('ports')}")


def _start_order() -> list[tuple[str, str | None]]:
    """The start order the file's header documents: each service and what it must reach
    (``healthy`` or ``done``) before the next starts."""
    header = []
    for line in COMPOSE_FILE.read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line.lstrip("# ").rstrip())
    text = " ".join(header)
    order = text[text.index("Start order:") + len("Start order:") :]
    order = order[: order.index(".")]
    steps = []
    for step in order.split("->"):
        match = re.fullmatch(r"\s*([\w-]+)(?:\s*\((healthy|done)\b[^)]*\))?\s*", step)
        assert match, f"cannot read {step!r} of the header's start order"
        steps.append((match[1], match[2]))
    return steps


def test_depends_on_gives_the_documented_start_order(services: dict[str, Any]) -> None:
    order = _start_order()
    assert [name for name, _ in order] == [
        "postgresql",
        "temporal-schema",
        "temporal",
        "temporal-setup",
        "api",
        "worker",
    ]
    for (before, reached), (after, _) in itertools.pairwise(order):
        assert reached is not None, f"the header does not say what {before} must reach"
        depends_on = services[after]["depends_on"]
        assert depends_on[before] == {"condition": CONDITIONS[reached]}, (after, depends_on)


def test_every_dependency_waits_for_a_condition_that_can_be_met(
    services: dict[str, Any],
) -> None:
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on without conditions"
        for dependency, how in depends_on.items():
            condition = how["condition"]
            assert condition in CONDITIONS.values(), (name, dependency, condition)
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], (name, dependency)
            else:
                # A one-shot: restarting it after it succeeded would start it again and again.
                assert services[dependency]["restart"].startswith("on-failure"), dependency


def test_long_running_services_have_healthchecks(services: dict[str, Any]) -> None:
    one_shots = {
        dependency
        for service in services.values()
        for dependency, how in service.get("depends_on", {}).items()
        if how["condition"] == "service_completed_successfully"
    }
    assert one_shots == {"temporal-schema", "temporal-setup"}
    for name in set(services) - one_shots:
        service = services[name]
        assert service["restart"] == "unless-stopped", name
        healthcheck = service.get("healthcheck", {})
        assert healthcheck.get("test") and not healthcheck.get("disable"), name
        assert healthcheck["test"][0] in ("CMD", "CMD-SHELL"), name


def test_workers_can_be_scaled(services: dict[str, Any]) -> None:
    worker = services["worker"]
    # `--scale worker=N` needs N containers: a fixed name or a host port allows only one.
    assert "container_name" not in worker
    assert "ports" not in worker
    assert worker["command"] == ["hookline", "worker"]


def test_setup_script_registers_every_search_attribute(services: dict[str, Any]) -> None:
    script = SETUP_SCRIPT.read_text()
    match = re.search(r'^SEARCH_ATTRIBUTES="([^"]*)"', script, re.MULTILINE)
    assert match, "setup.sh lists its search attributes in SEARCH_ATTRIBUTES"
    assert set(match[1].split()) == {key.name for key in sa.ALL}
    assert {key.indexed_value_type for key in sa.ALL} == {SearchAttributeIndexedValueType.KEYWORD}
    assert "search-attribute create" in script and "--type Keyword" in script

    # Both one-shot steps run this very script, each with a step that it knows.
    steps = set(re.findall(r"^\s+(\w+)\) \1 ;;$", script, re.MULTILINE))
    assert steps == {"schema", "hookline"}
    for name, step in (("temporal-schema", "schema"), ("temporal-setup", "hookline")):
        service = services[name]
        assert service["image"].startswith("temporalio/admin-tools:")
        mounts = dict(volume.split(":")[:2] for volume in service["volumes"])
        mounted = mounts["./deploy/temporal"]
        assert service["entrypoint"] == ["/bin/sh", f"{mounted}/setup.sh"]
        assert service["command"] == [step]
    assert services["temporal-setup"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_mounted_files_exist(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), (name, source)


def test_postgres_init_makes_the_databases_and_roles_compose_uses(
    services: dict[str, Any],
) -> None:
    sql = POSTGRES_INIT.read_text()
    roles = dict(re.findall(r"CREATE ROLE (\w+) WITH LOGIN PASSWORD '([^']*)'", sql))
    databases = dict(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+)", sql))
    temporal = services["temporal"]["environment"]
    assert roles[temporal["POSTGRES_USER"]] == temporal["POSTGRES_PWD"]
    assert services["temporal-schema"]["environment"]["SQL_PASSWORD"] == temporal["POSTGRES_PWD"]
    assert databases["temporal"] == databases["temporal_visibility"] == temporal["POSTGRES_USER"]
    url = services["api"]["environment"]["HOOKLINE_DATABASE_URL"]
    user, password = re.findall(r"//(\w+):([^@]*)@", url)[0]
    assert roles[user] == password and databases["hookline"] == user


def test_dockerfile_runs_hookline_commands_that_exist(services: dict[str, Any]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    [cmd] = re.findall(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    commands = [json.loads(cmd), services["api"]["command"], services["worker"]["command"]]
    assert json.loads(cmd) == ["hookline", "api"]
    for command in commands:
        assert command[0] == "hookline"
        with pytest.raises(SystemExit) as exited:
            main([*command[1:], "--help"])
        assert exited.value.code == 0, command

    # The image installs the project: every package it ships, and what the build reads.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "hookline" in pyproject["project"]["scripts"]
    copied = {
        source
        for line in re.findall(r"^COPY (.+)$", dockerfile, re.MULTILINE)
        for source in line.split()[:-1]
    }
    assert pyproject["tool"]["setuptools"]["packages"]["find"]["include"][0] == "hookline"
    # hookline/ and the folders its links point to (api/, workflows/, activities/).
    linked = {p.readlink().name for p in (ROOT / "hookline").iterdir() if p.is_symlink()}
    assert linked == {"api", "workflows", "activities"}
    assert {"hookline", *linked, "pyproject.toml", "README.md"} <= copied
