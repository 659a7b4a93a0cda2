"""Files only Hookline's own user may read: the data directory and the SQLite files in it.

The registry holds sealed secrets, the attempt log holds receivers' answers, and the data
directory holds the development keys: none of it is for other users of the machine.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
"""Files SQLite keeps beside a database (it creates them with the database's permissions)."""

log = logging.getLogger(__name__)


def private_dir(path: Path) -> Path:
    """Make ``path`` (and any missing parents) and leave it open to its owner only.

    Returns:
        ``path``.
    """
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    _restrict(path, PRIVATE_DIR_MODE)
    return path


def private_file(path: Path) -> None:
    """Create ``path`` empty unless it exists, readable by its owner only (see
    ``make_private`` for an existing one)."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE_MODE))
    except FileExistsError:
        pass
    make_private(path)


def make_private(path: Path) -> None:
    """Take any group or other permission from ``path`` and its SQLite companions, where
    they exist (files made by an earlier version, or by another program)."""
    for candidate in (path, *(path.with_name(path.name + s) for s in SQLITE_COMPANIONS)):
        if candidate.exists():
            _restrict(candidate, PRIVATE_FILE_MODE)


def _restrict(path: Path, mode: int) -> None:
    try:
        if path.stat().st_mode & 0o777 & ~mode:
            path.chmod(mode)
    except PermissionError:  # another user's file: say so, and go on
        log.warning("cannot make %s private (owned by another user)", path)
