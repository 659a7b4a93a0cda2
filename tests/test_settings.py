"""Settings read from HOOKLINE_* environment variables: lists, nesting, checks, defaults."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from hookline.config.settings import Settings
from tests.harness import run_hookline


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No HOOKLINE_* variable of the outer environment leaks into a test."""
    for name in list(os.environ):
        if name.upper().startswith("HOOKLINE_"):
            monkeypatch.delenv(name)
    yield


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a, b,,c", ["a", "b", "c"]),
        ("single", ["single"]),
        ("  spaced  ,\tkey2 ", ["spaced", "key2"]),
        ("", []),
        (" , ,", []),
    ],
)
def test_api_keys_are_comma_separated(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: list[str]
) -> None:
    monkeypatch.setenv("HOOKLINE_API_KEYS", raw)

    assert Settings().api_keys == expected


def test_api_keys_default_to_none() -> None:
    assert Settings().api_keys == []


def test_nested_retry_field_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKLINE_RETRY__INITIAL_INTERVAL_S", "10")
    monkeypatch.setenv("HOOKLINE_RETRY__WINDOW_S", "600")

    settings = Settings()

    assert settings.retry.initial_interval_s == 10
    assert settings.retry.window_s == 600
    # Fields not set keep their defaults.
    assert settings.retry.backoff_coefficient == 2.0
    assert settings.retry.max_interval_s == 3600.0


def test_retry_max_interval_below_initial_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKLINE_RETRY__INITIAL_INTERVAL_S", "100")
    monkeypatch.setenv("HOOKLINE_RETRY__MAX_INTERVAL_S", "10")

    with pytest.raises(ValidationError, match="max_interval_s must be at least initial_interval_s"):
        Settings()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HOOKLINE_RETRY__INITIAL_INTERVAL_S", "0"),
        ("HOOKLINE_RETRY__BACKOFF_COEFFICIENT", "0.5"),
        ("HOOKLINE_RETRY__WINDOW_S", "not-a-number"),
        ("HOOKLINE_MAX_PAYLOAD_BYTES", "0"),
        ("HOOKLINE_API_PORT", "70000"),
        ("HOOKLINE_ATTEMPT_TIMEOUT_S", "301"),
    ],
)
def test_out_of_range_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError):
        Settings()


def test_scalar_values_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKLINE_MAX_PAYLOAD_BYTES", "1024")
    monkeypatch.setenv("HOOKLINE_TASK_QUEUE", "q1")
    monkeypatch.setenv("HOOKLINE_ATTEMPT_TIMEOUT_S", "2.5")

    settings = Settings()

    assert settings.max_payload_bytes == 1024
    assert settings.task_queue == "q1"
    assert settings.attempt_timeout_s == 2.5


def test_defaults() -> None:
    settings = Settings()

    assert settings.max_payload_bytes == 256 * 1024
    assert settings.max_request_bytes == 1024 * 1024
    assert settings.database_url is None


def test_database_url_defaults_to_sqlite_under_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOOKLINE_DATA_DIR", str(tmp_path / "data"))

    settings = Settings()

    assert settings.data_dir == tmp_path / "data"
    expected = (tmp_path / "data" / "hookline.db").resolve()
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{expected}"


def test_default_data_dir_is_resolved_against_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)

    url = Settings().resolved_database_url

    assert url == f"sqlite+aiosqlite:///{(tmp_path / '.hookline' / 'hookline.db').resolve()}"
    assert Path(url.removeprefix("sqlite+aiosqlite:///")).is_absolute()


def test_database_url_from_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = "postgresql+asyncpg://hookline:pw@db.internal:5432/hookline"
    monkeypatch.setenv("HOOKLINE_DATABASE_URL", url)
    monkeypatch.setenv("HOOKLINE_DATA_DIR", str(tmp_path))

    settings = Settings()

    assert settings.database_url == url
    assert settings.resolved_database_url == url


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "off"),
        ({"HOOKLINE_TEMPORAL_API_KEY": "cloud-key"}, "gzip"),
        ({"HOOKLINE_TEMPORAL_API_KEY": "k", "HOOKLINE_TEMPORAL_GRPC_COMPRESSION": "off"}, "off"),
        ({"HOOKLINE_TEMPORAL_GRPC_COMPRESSION": "gzip"}, "gzip"),
    ],
)
def test_grpc_compression_is_gzip_only_for_temporal_cloud_unless_set(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert Settings().resolved_grpc_compression == expected


def test_production_refuses_short_admin_keys_without_printing_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOOKLINE_MODE", "production")
    monkeypatch.setenv("HOOKLINE_API_KEYS", "x," + "k" * 32)

    with pytest.raises(ValidationError) as refused:
        Settings()

    assert "shorter than 32 characters" in str(refused.value)
    assert "k" * 32 not in str(refused.value)


def test_long_admin_keys_start_in_production_and_short_ones_in_development(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOOKLINE_API_KEYS", "x")
    assert Settings().api_keys == ["x"]
    monkeypatch.setenv("HOOKLINE_MODE", "production")
    monkeypatch.setenv("HOOKLINE_API_KEYS", "k" * 32)
    assert Settings().api_keys == ["k" * 32]


def test_a_short_admin_key_stops_the_api_in_production(tmp_path: Path) -> None:
    env = {
        "HOOKLINE_MODE": "production",
        "HOOKLINE_API_KEYS": "x",
        "HOOKLINE_DATA_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    done = run_hookline(["api"], env)
    assert done.returncode != 0
    assert "shorter than 32 characters" in done.stderr
    assert "Traceback" not in done.stderr
