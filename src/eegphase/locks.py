"""Inter-process file locks: one process at a time creates a store, generates a dataset or trains a phase.

A lock is ``fcntl.flock`` on an open file. The kernel drops it when the holder exits, however it exits
(``kill -9`` included), so a lock that can be taken proves that no live process holds it; that is how a
stale run is told from a live one. ``flock`` locks belong to the open file, not to the process, so two
opens in one process exclude each other too. Lock files are left in place (deleting one while another
process waits on it would let two holders in), except a run's lease, which its holder removes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


@contextlib.contextmanager
def file_lock(path: str | Path, waiting: str | None = None) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (created if needed) for the block; yields whether it had to wait.

    ``waiting`` is logged (INFO) when another process holds the lock, before blocking until it is free.
    """
    fd = _open(Path(path))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            waited = False
        except BlockingIOError:
            if waiting:
                log.info("%s", waiting)
            fcntl.flock(fd, fcntl.LOCK_EX)
            waited = True
        yield waited
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def lease(path: str | Path) -> Iterator[Path]:
    """Hold ``path`` locked for as long as the block runs (a process's proof of life), then remove it."""
    path = Path(path)
    fd = _open(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a fresh, uniquely named file: nobody else holds it
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)


def is_held(path: str | Path) -> bool:
    """Whether a live process holds the lock on ``path`` (a missing file is not held)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
