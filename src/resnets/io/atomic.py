"""The one atomic write of the package, and its failures (disk full, quota, read-only) as one
clear error.

Every file the package writes for keeps (a run's checkpoints, config and results, a study's
per-network results, converted weights, int8 models, benchmark results) is first written in
full to a fsync'ed temporary file in the same directory, then moved into place with
``os.replace``: an error or a kill while writing leaves the previous version.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


class StorageError(OSError):
    """A file of the run could not be written; what was written before is intact."""


def storage_error(exc: OSError, *, what: str, directory: str | Path) -> StorageError:
    """``exc`` (raised while writing ``what`` into ``directory``) as a message naming both and the fix."""
    reason = "no space left on device" if exc.errno in _FULL else (exc.strerror or str(exc))
    error = StorageError(
        f"cannot write {what} in {directory}: {reason} ({type(exc).__name__} errno {exc.errno}); "
        f"the files written before are intact: free some space (or fix the directory's permissions), "
        f"then continue with `resnets train --resume {directory}`"
    )
    error.errno = exc.errno
    return error


def _stage(directory: Path, name: str, payload: bytes) -> Path:
    """Write ``payload`` to a fsync'ed temporary file next to ``directory/name``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def write_files_atomically(directory: Path, payloads: dict[str, bytes]) -> None:
    """Stage every payload completely, then move each into place (all or nothing on errors)."""
    staged: dict[str, Path] = {}
    try:
        for name, payload in payloads.items():
            staged[name] = _stage(directory, name, payload)
    except BaseException:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
        raise
    for name, tmp in staged.items():
        os.replace(tmp, directory / name)
    if hasattr(os, "O_DIRECTORY"):
        dir_fd = os.open(directory, os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_atomically(path: str | Path, data: str | bytes) -> None:
    """Replace the file ``path`` with ``data`` atomically (the directory is created if needed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_files_atomically(path.parent, {path.name: data.encode() if isinstance(data, str) else data})


def write_json(path: str | Path, obj: Any, *, indent: int = 2) -> None:
    """``obj`` as JSON text with a final newline, replacing the file ``path`` atomically (NaN and
    infinities are written as ``NaN`` / ``Infinity``, which Python's ``json`` reads back)."""
    write_atomically(path, json.dumps(obj, indent=indent) + "\n")


__all__ = ["StorageError", "storage_error", "write_atomically", "write_files_atomically", "write_json"]
