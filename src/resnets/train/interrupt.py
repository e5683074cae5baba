"""Ctrl-C (SIGINT) and SIGTERM during training: finish the step, save, stop cleanly.

While :func:`stop_signals` is active the first SIGINT or SIGTERM only raises a flag; the
engine sees it after the step in flight, writes the ``last`` checkpoint (the one atomic write
of the run directory) and raises :class:`TrainingInterrupted`, which says where to resume.
The first signal also puts the previous handlers back, so a second Ctrl-C stops at once.
Handlers can only be installed from the main thread; elsewhere the flag is never raised.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving a resumable checkpoint at ``step``."""

    def __init__(self, *, signum: int, step: int, total_steps: int, run_dir: Path | None) -> None:
        self.signum, self.step, self.total_steps, self.run_dir = signum, step, total_steps, run_dir
        name = signal.Signals(signum).name
        where = f"checkpoint saved in {run_dir}" if run_dir is not None else "no run directory to save to"
        super().__init__(f"interrupted ({name}) at step {step} of {total_steps}; {where}")

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum

    def resume_command(self, *, device: str | None = None, processes: int = 1) -> str | None:
        """The command line that continues this run (under torchrun with ``processes`` > 1: the
        same number of processes keeps the global batch), or None without a run directory."""
        if self.run_dir is None:
            return None
        device_arg = f" --device {shlex.quote(device)}" if device else ""
        launcher = f"torchrun --nproc_per_node={processes} -m resnets" if processes > 1 else "resnets"
        return f"{launcher} train --resume {shlex.quote(str(self.run_dir))}{device_arg}"


class StopFlag:
    """Set by the first stop signal: ``signum`` is that signal's number, else None."""

    def __init__(self) -> None:
        self.signum: int | None = None


@contextlib.contextmanager
def stop_signals() -> Iterator[StopFlag]:
    """Within the block, SIGINT and SIGTERM set the yielded flag instead of stopping the process."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}

    def restore() -> None:
        for s, handler in previous.items():  # None: a handler not set from Python; the default then
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)

    def handler(signum: int, frame: FrameType | None) -> None:
        flag.signum = signum
        restore()  # a second signal acts as it would without us

    for s in STOP_SIGNALS:
        signal.signal(s, handler)
    try:
        yield flag
    finally:
        restore()
