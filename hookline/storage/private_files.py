"""Files only Hookline's own user may read: the SQLite files, and the data directory when
Hookline makes it (an existing one is left as the operator set it).

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
    """Make ``path`` (and any missing parents) open to its owner only; an existing directory
    is left as it is, with a warning if its group or others may use it.

    An existing directory may be the operator's choice, shared on purpose (a group's setgid
    directory, or ``/tmp`` with its sticky bit): changing its mode could break the machine,
    and the files Hookline keeps in it are owner-only anyway.

    Returns:
        ``path``.

    Raises:
        FileExistsError: ``path`` exists and is not a directory.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE)  # the umask can only take bits away
    except FileExistsError:
        if not path.is_dir():
            raise
        if path.stat().st_mode & 0o077:
            log.warning(
                "%s is open to its group or others; Hookline leaves an existing directory's "
                "mode as it is (its own files in it are owner-only)",
                path,
            )
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
