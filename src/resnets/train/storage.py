"""Failed writes to a run directory (disk full, quota, read-only), as one clear error."""

from __future__ import annotations

import errno
from pathlib import Path

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
