"""One run per run directory: a lock file holding the owner's process id.

The lock is ``fcntl.flock`` on ``<run_dir>/.lock`` where available (the kernel drops it when
its process dies, even by SIGKILL, so a stale lock file never blocks anyone); elsewhere the
file is created with ``O_CREAT | O_EXCL`` and a lock whose process is gone is taken over.
"""

from __future__ import annotations

import os
from pathlib import Path

LOCK_NAME = ".lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class RunDirBusyError(RuntimeError):
    """Another live process is writing to this run directory."""


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _owner(path: Path) -> int:
    try:
        return int(path.read_text().strip() or "0")
    except (OSError, ValueError):
        return 0


def _busy(run_dir: Path, pid: int) -> RunDirBusyError:
    return RunDirBusyError(
        f"run directory {run_dir} is in use by process {pid} (lock {run_dir / LOCK_NAME}); "
        "wait for that run to finish or stop it, or train into another directory (train.name=... / train.out_dir=...)"
    )


class RunDirLock:
    """Held from :meth:`acquire` to :meth:`release`; refuses a directory another process holds."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunDirLock:
        if fcntl is not None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise _busy(self.run_dir, _owner(self.path)) from None
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._fd = fd
            return self
        for _ in range(3):  # O_EXCL: create, or take over a lock whose owner is gone
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                pid = _owner(self.path)
                if _pid_alive(pid) and pid != os.getpid():
                    raise _busy(self.run_dir, pid) from None
                self.path.unlink(missing_ok=True)
                continue
            os.write(fd, f"{os.getpid()}\n".encode())
            self._fd = fd
            return self
        raise _busy(self.run_dir, _owner(self.path))

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        if fcntl is None:
            self.path.unlink(missing_ok=True)
        else:
            os.ftruncate(fd, 0)  # no owner any more (the file itself stays: unlinking it would race)
        os.close(fd)  # closing drops the flock

    def __enter__(self) -> RunDirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
