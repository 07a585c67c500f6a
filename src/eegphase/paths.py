"""Start-up checks of the folders a run writes to: a folder that cannot be written stops the run before any
work, with an error naming the path and the config key that chose it."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path


class UnwritablePathError(OSError):
    """A configured folder that cannot be created or written; ``errno`` is the operating system's."""


def require_writable(path: str | Path, key: str) -> Path:
    """Check, creating nothing, that ``path`` is (or can be created as) a folder this process can write.

    An existing folder is proven writable by creating and removing a file in it; for a folder still to be
    created, its nearest existing ancestor must be a writable folder. Raises :class:`UnwritablePathError` (an
    OSError keeping the errno) whose message reads ``<key>=<path> ...``: a permission problem, a file where a
    folder is expected, a read-only filesystem.
    """
    path = Path(path)
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(existing))
        if existing == path:
            fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=path)
            os.close(fd)
            os.unlink(probe)
        elif not os.access(existing, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(existing))
    except OSError as err:
        where = f" ({err.filename})" if err.filename and str(err.filename) != str(path) else ""
        raise UnwritablePathError(
            err.errno,
            f"{key}={path} is not a writable folder{where}: {err.strerror or err}; choose another {key}",
        ) from err
    return path
