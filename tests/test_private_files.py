"""The data directory and the registry's SQLite files are readable by their owner only."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from hookline.config.settings import Settings
from hookline.storage.private_files import private_dir
from hookline.storage.registry import opened_registry
from hookline.storage.secret_box import secret_box_for


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_fresh_data_directory_and_its_database_are_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / ".hookline"
    settings = Settings(data_dir=data_dir)
    async with opened_registry(settings) as registry:
        await registry.apps.create("Acme", None, "whsec_" + "A" * 40)  # the WAL gets written
        files = sorted(p.name for p in data_dir.iterdir())
        modes = {name: _mode(data_dir / name) for name in files}

    assert _mode(data_dir) == 0o700
    assert {"hookline.db", "hookline.db-wal", "secrets-key"} <= set(files)
    assert all(mode == 0o600 for mode in modes.values()), modes


async def test_files_an_older_version_left_readable_are_made_owner_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / ".hookline"
    data_dir.mkdir(mode=0o755)
    database = data_dir / "hookline.db"
    database.touch(mode=0o644)
    database.chmod(0o644)
    data_dir.chmod(0o755)

    settings = Settings(data_dir=data_dir)
    with caplog.at_level(logging.WARNING, logger="hookline.storage.private_files"):
        async with opened_registry(settings):
            pass

    # The directory is the operator's: left as it is, with a warning; the files are Hookline's.
    assert _mode(data_dir) == 0o755
    assert any(str(data_dir) in r.getMessage() for r in caplog.records), caplog.records
    assert _mode(database) == 0o600


@pytest.mark.parametrize("mode", [0o1777, 0o2770, 0o700])
def test_an_existing_directory_keeps_its_mode(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)  # such as /tmp (sticky) or a group's setgid directory
    with caplog.at_level(logging.WARNING, logger="hookline.storage.private_files"):
        assert private_dir(shared) == shared
    assert _mode(shared) == mode
    warned = [r for r in caplog.records if str(shared) in r.getMessage()]
    assert bool(warned) == bool(mode & 0o077), warned


def test_the_development_secrets_key_lives_in_an_owner_only_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "keys"
    secret_box_for(Settings(data_dir=data_dir))
    assert _mode(data_dir) == 0o700
    assert _mode(data_dir / "secrets-key") == 0o600
