"""The data directory and the registry's SQLite files are readable by their owner only."""

from __future__ import annotations

import stat
from pathlib import Path

from hookline.config.settings import Settings
from hookline.storage.registry import opened_registry
from hookline.storage.secret_box import secret_box_for


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_fresh_data_directory_and_its_database_are_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / ".hookline"
    settings = Settings(data_dir=data_dir)
    async with opened_registry(settings) as registry:
        await registry.create_app("Acme", None, "whsec_" + "A" * 40)  # the WAL gets written
        files = sorted(p.name for p in data_dir.iterdir())
        modes = {name: _mode(data_dir / name) for name in files}

    assert _mode(data_dir) == 0o700
    assert {"hookline.db", "hookline.db-wal", "secrets-key"} <= set(files)
    assert all(mode == 0o600 for mode in modes.values()), modes


async def test_files_an_older_version_left_readable_are_made_owner_only(tmp_path: Path) -> None:
    data_dir = tmp_path / ".hookline"
    data_dir.mkdir(mode=0o755)
    database = data_dir / "hookline.db"
    database.touch(mode=0o644)
    database.chmod(0o644)
    data_dir.chmod(0o755)

    settings = Settings(data_dir=data_dir)
    async with opened_registry(settings):
        pass

    assert _mode(data_dir) == 0o700
    assert _mode(database) == 0o600


def test_the_development_secrets_key_lives_in_an_owner_only_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "keys"
    secret_box_for(Settings(data_dir=data_dir))
    assert _mode(data_dir) == 0o700
    assert _mode(data_dir / "secrets-key") == 0o600
