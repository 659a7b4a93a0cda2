"""``hookline apps|endpoints|events|deliveries|recoveries``: the API from a terminal, tables or
JSON, secrets shown and rotated, bulk recovery followed with a progress bar, exit codes, and the
help of every command."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import Client

from hookline.cli.main import build_parser
from hookline.config.settings import Settings
from hookline.contracts.signing import generate_secret
from tests.conftest import API_KEY, free_port
from tests.harness import Hookline, Receiver, run_hookline, wait_for

CLI = str(Path(sys.executable).parent / "hookline")
# Two attempts a second apart, then the delivery fails.
TWO_ATTEMPTS = {"schedule_s": [0, 1]}


async def start_cli(hookline: Hookline, *args: str) -> asyncio.subprocess.Process:
    """Start the CLI against the test API, unless ``args`` give another ``--api-url`` or
    ``--api-key`` (without blocking the worker in this event loop)."""
    defaults = {"--api-url": hookline.api_url, "--api-key": API_KEY}
    given = [
        arg for option, value in defaults.items() if option not in args for arg in (option, value)
    ]
    return await asyncio.create_subprocess_exec(
        CLI, *args, *given, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )


async def finished(process: asyncio.subprocess.Process, err: bytes = b"") -> tuple[int, str, str]:
    """Wait for the CLI to exit: its exit code, stdout, and stderr (after ``err``)."""
    out, rest = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), (err + rest).decode()


async def hookline_cli(hookline: Hookline, *args: str) -> tuple[int, str, str]:
    """Run the CLI against the test API: its exit code, stdout and stderr."""
    return await finished(await start_cli(hookline, *args))


async def failed_deliveries(
    hookline: Hookline, receiver: Receiver, count: int
) -> tuple[str, str, list[str]]:
    """An app and an endpoint whose receiver answers 500, with ``count`` deliveries failed and
    listed in visibility (where a recovery finds them); then the receiver answers 200.

    Returns:
        The app id, the endpoint id and the event ids.
    """
    app_id = await hookline.create_app()
    receiver.default = (500, {})
    endpoint = await hookline.create_endpoint(app_id, receiver.url, retry=TWO_ATTEMPTS)
    events = [
        await hookline.send_event(app_id, "batch.completed", {"n": n}, id=f"evt_{n}")
        for n in range(count)
    ]
    for event in events:
        await hookline.wait_status(app_id, event["deliveries"][0]["id"], "failed")
    query = f"/v1/apps/{app_id}/deliveries?status=failed&endpoint_id={endpoint['id']}"

    async def all_listed() -> bool:
        return len((await hookline.ok("GET", query))["data"]) == count

    await wait_for(all_listed, what="visibility to list the failed deliveries")
    receiver.default = (200, {})
    return app_id, endpoint["id"], [event["id"] for event in events]


async def redelivered(receiver: Receiver, event_ids: list[str]) -> None:
    """Wait until the receiver has answered 200 to each of the events once more."""

    def probe() -> bool:
        seen = [r.headers["webhook-id"] for r in receiver.requests]
        return all(seen.count(event_id) >= 3 for event_id in event_ids)  # 2 failed, 1 more

    await wait_for(probe, what="the recovered deliveries at the receiver")


async def test_people_cli_walks_through_a_delivery(hookline: Hookline, receiver: Receiver) -> None:
    code, out, _ = await hookline_cli(hookline, "apps", "create", "Acme CLI", "--uid", "acme-cli")
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["ID", "UID", "NAME", "CREATED_AT"] and "acme-cli" in row

    code, out, _ = await hookline_cli(
        hookline, "endpoints", "create", "acme-cli", receiver.url, "--types", "batch.*"
    )
    assert code == 0 and "batch.*" in out
    code, out, _ = await hookline_cli(
        hookline, "events", "send", "acme-cli", "batch.completed", '{"n": 1}', "--id", "evt_cli"
    )
    assert code == 0 and "evt_cli" in out and "pending" in out
    code, out, _ = await hookline_cli(hookline, "deliveries", "list", "acme-cli", "--json")
    [delivery] = json.loads(out)["data"]
    view = await hookline.wait_status("acme-cli", delivery["id"], "succeeded")
    assert json.loads(receiver.requests[0].body) == {"n": 1}

    code, out, _ = await hookline_cli(hookline, "deliveries", "show", "acme-cli", view["id"])
    assert code == 0 and "succeeded" in out.splitlines()[1]
    code, _, err = await hookline_cli(hookline, "deliveries", "retry", "acme-cli", view["id"])
    assert code == 1 and "409 already_succeeded" in err


@pytest.mark.shared_stack
async def test_people_cli_reports_errors_plainly(hookline: Hookline) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    runs = [
        (["apps", "show", "no-such-app"], 1, "error 404 not_found"),
        (["apps", "show", "x", "--api-key", "wrong-key"], 1, "401 unauthorized: "),
        (["apps", "show", "x", "--api-url", nobody], 1, f"cannot reach the API at {nobody}"),
        # Usage errors, exit 2 as for argparse's own: arguments the command cannot use.
        (["events", "send", "x", "a.b", "{not json"], 2, "the payload must be JSON"),
        (["apps", "show", "x", "--api-url", "localhost"], 2, "--api-url must start with"),
    ]
    for args, code, message in runs:
        exit_code, out, err = await hookline_cli(hookline, *args)
        assert (exit_code, out) == (code, ""), (args, err)
        assert err.startswith("hookline: ") and message in err, (args, err)
        if "401" in message:  # where the refused key came from
            assert "(the API key is --api-key)" in err


def fields(out: str) -> dict[str, str]:
    """The ``name  value`` lines one item prints as, by name."""
    return dict(line.split(None, 1) for line in out.splitlines() if line.strip())


@pytest.mark.shared_stack
async def test_endpoint_secret_is_printed_at_creation_and_rotates(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    code, out, err = await hookline_cli(hookline, "endpoints", "create", app_id, receiver.url)
    assert code == 0, err
    table, secret_line = out.split("\n\n")
    endpoint_id = table.splitlines()[1].split()[0]
    created = fields(secret_line)["secret"]
    assert created.startswith("whsec_")
    assert (
        "Store the secret now" in err and f"hookline endpoints secret {app_id} {endpoint_id}" in err
    )

    code, out, _ = await hookline_cli(hookline, "endpoints", "secret", app_id, endpoint_id)
    assert code == 0 and fields(out) == {"secret": created, "signing": "with this secret only"}

    code, out, _ = await hookline_cli(hookline, "endpoints", "rotate", app_id, endpoint_id)
    assert code == 0
    rotated = fields(out)
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created
    # The default grace period: a day during which the previous secret signs too.
    assert re.fullmatch(
        r"with this secret and the previous one, until \S+ \(in 24 h\)", rotated["signing"]
    ), rotated
    code, out, _ = await hookline_cli(hookline, "endpoints", "secret", app_id, endpoint_id)
    assert fields(out) == rotated

    chosen = generate_secret()
    code, out, _ = await hookline_cli(
        hookline, "endpoints", "rotate", app_id, endpoint_id, "--secret", chosen, "--grace-s", "0"
    )
    assert code == 0 and fields(out) == {"secret": chosen, "signing": "with this secret only"}
    code, out, _ = await hookline_cli(
        hookline, "endpoints", "secret", app_id, endpoint_id, "--json"
    )
    assert code == 0 and json.loads(out) == {"secret": chosen, "previous_secret_expires_at": None}


@pytest.mark.shared_stack
async def test_empty_lists_say_so(hookline: Hookline) -> None:
    app_id = await hookline.create_app()
    lists = ["endpoints", "events", "deliveries"]
    done = await asyncio.gather(*(hookline_cli(hookline, name, "list", app_id) for name in lists))
    assert done == [(0, f"no {name}\n", "") for name in lists]


async def test_deliveries_show_tells_the_last_error_and_the_next_attempt(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id = await hookline.create_app()
    receiver.default = (500, {})
    await hookline.create_endpoint(app_id, receiver.url, retry={"schedule_s": [0, 600]})
    event = await hookline.send_event(app_id, "batch.completed", {"n": 1})
    delivery_id = event["deliveries"][0]["id"]
    await hookline.wait_status(app_id, delivery_id, "retrying")

    code, out, err = await hookline_cli(hookline, "deliveries", "show", app_id, delivery_id)

    assert code == 0, err
    shown = fields(out)
    assert (shown["id"], shown["status"], shown["attempts"]) == (delivery_id, "retrying", "1")
    assert (shown["url"], shown["last_error"]) == (receiver.url, "HTTP 500")
    assert re.fullmatch(r"\S+: answered 500 in \d+ ms", shown["last_attempt"]), shown
    next_at, ahead = shown["next_attempt_at"].split(" ", 1)
    assert datetime.fromisoformat(next_at) > datetime.now(UTC) and re.fullmatch(
        r"\(in \d+ (s|min)\)", ahead
    ), shown
    code, out, _ = await hookline_cli(hookline, "deliveries", "show", app_id, delivery_id, "--json")
    assert json.loads(out) == await hookline.delivery(app_id, delivery_id)


def commands(
    parser: argparse.ArgumentParser, path: str = "hookline"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every command and subcommand under ``parser``, with its name as typed."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                yield f"{path} {name}", command
                yield from commands(command, f"{path} {name}")


def test_every_command_and_option_has_help() -> None:
    every = list(commands(build_parser()))
    assert len(every) > 25
    for name, command in every:
        assert (command.description or "").strip(), f"{name} has no description"
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    assert (choice.help or "").strip(), f"{name} {choice.dest} has no help"
            else:
                assert (action.help or "").strip(), f"{name} {action.dest} has no help"


def test_hookline_help_lists_every_command_without_markup() -> None:
    done = run_hookline(["--help"], dict(os.environ))
    assert done.returncode == 0
    assert "``" not in done.stdout
    top = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name in {*top.choices, "listen"}:
        assert re.search(rf"^  {name} +\w", done.stdout, re.M), f"{name} not in hookline --help"
    assert "exit codes:" in done.stdout and re.search(r"^  2 +usage", done.stdout, re.M)


def test_client_commands_start_without_the_server_side() -> None:
    # The server side takes most of a second to import: every client command would pay it.
    server_side = (
        "hookline.api",
        "hookline.worker",
        "hookline.workflows",
        "hookline.activities",
        "hookline.delivery",
        "hookline.temporal",
        "temporalio.client",
        "alembic",
        "sqlalchemy",
    )
    script = (
        "import sys, hookline.cli.main; "
        f"print(sorted(m for m in sys.modules if m.startswith({server_side!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout == "[]\n", done.stdout


async def test_recover_follows_the_recovery_to_the_end(
    hookline: Hookline, receiver: Receiver
) -> None:
    app_id, endpoint_id, event_ids = await failed_deliveries(hookline, receiver, 3)

    code, out, err = await hookline_cli(
        hookline, "endpoints", "recover", app_id, endpoint_id, "--since", "10m"
    )

    assert code == 0, err
    header, row = out.splitlines()
    assert header.split() == [
        "ID",
        "ENDPOINT_ID",
        "STATUS",
        "FOUND",
        "RETRIED",
        "SKIPPED",
        "ERRORS",
    ]
    assert row.split()[1:] == [endpoint_id, "completed", "3", "3", "0", "0"]
    recovery_id = row.split()[0]
    assert f"recovery {recovery_id} started: Ctrl-C cancels it" in err
    # Off a terminal the bar is drawn once, as it stood at the end.
    assert re.search(r"completed .* 3/3 retried 3, skipped 0, errors 0", err), err
    await redelivered(receiver, event_ids)

    code, out, _ = await hookline_cli(hookline, "recoveries", "show", app_id, recovery_id)
    assert code == 0 and out.splitlines()[1].split()[2:4] == ["completed", "3"]
    code, _, err = await hookline_cli(hookline, "recoveries", "cancel", app_id, recovery_id)
    assert code == 1 and "409 already_finished" in err


async def test_recover_json_and_no_wait(hookline: Hookline, receiver: Receiver) -> None:
    app_id, endpoint_id, event_ids = await failed_deliveries(hookline, receiver, 2)

    code, out, err = await hookline_cli(
        hookline, "endpoints", "recover", app_id, endpoint_id, "--since", "1h", "--json"
    )

    assert code == 0, err
    done = json.loads(out)
    assert (done["status"], done["found"], done["retried"]) == ("completed", 2, 2)
    assert done["finished_at"] is not None
    assert "━" not in err  # no bar with --json
    await redelivered(receiver, event_ids)

    # A window ahead of now finds nothing; --no-wait prints the recovery as it started.
    ahead = ["--since", "2099-01-01T00:00:00Z", "--until", "2099-01-02T00:00:00Z"]
    code, out, err = await hookline_cli(
        hookline, "endpoints", "recover", app_id, endpoint_id, *ahead, "--no-wait", "--json"
    )
    assert code == 0, err
    started = json.loads(out)
    assert started["status"] == "running"
    assert datetime.fromisoformat(started["since"]) == datetime(2099, 1, 1, tzinfo=UTC)

    code, _, err = await hookline_cli(
        hookline, "endpoints", "recover", app_id, endpoint_id, "--since", "2026-01-01T00:00:00"
    )
    assert code == 1 and "422 validation_error" in err


async def test_ctrl_c_cancels_the_recovery(
    settings: Settings, temporal_client: Client, receiver: Receiver
) -> None:
    # Half a delivery a second: a batch of one, then two seconds until the next.
    paced = settings.model_copy(update={"recovery_rate_per_s": 0.5})
    async with Hookline.running(paced, temporal_client, API_KEY) as hookline:
        app_id, endpoint_id, _ = await failed_deliveries(hookline, receiver, 5)
        process = await start_cli(
            hookline, "endpoints", "recover", app_id, endpoint_id, "--since", "10m"
        )
        assert process.stderr is not None
        started = await asyncio.wait_for(process.stderr.readline(), 30)
        assert started.startswith(b"recovery rcv_"), started
        recovery_id = started.decode().split()[1]
        path = f"/v1/apps/{app_id}/recoveries/{recovery_id}"

        async def retried() -> bool:
            return bool((await hookline.ok("GET", path))["retried"] >= 1)

        await wait_for(retried, what="the first retry")
        process.send_signal(signal.SIGINT)
        code, out, err = await finished(process, started)

        assert code == 130, err
        assert "cancelling: the recovery stops after the batch in flight" in err
        row = out.splitlines()[1].split()
        assert row[:3] == [recovery_id, endpoint_id, "cancelled"] and row[3] == "5", out
        assert 1 <= int(row[4]) < 5, out
        view = await hookline.ok("GET", path)
        assert view["status"] == "cancelled" and view["retried"] == int(row[4])
