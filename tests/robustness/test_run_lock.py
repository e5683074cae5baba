"""Two runs pointed at one run directory: the second is refused (naming the owner's process)
while the first holds it, a lock left by a dead process is taken over, and runs started
together get directories of their own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from robust_helpers import tiny_recipe

import resnets.train.rundir.lock as runlock
from resnets.cli import main
from resnets.train import config_from_mapping, run
from resnets.train.rundir.lock import LOCK_NAME, RunDirBusyError, RunDirLock
from resnets.train.rundir.log import new_run_dir

# Holds a run directory's lock from another process: runlock.py is loaded by its path, so
# this child starts in a blink (no torch import), prints "held" and waits to be killed.
HOLDER = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("runlock", sys.argv[1])
runlock = importlib.util.module_from_spec(spec); spec.loader.exec_module(runlock)
if sys.argv[3] == "excl":
    runlock.fcntl = None
runlock.RunDirLock(sys.argv[2]).acquire()
print("held", flush=True)
time.sleep(600)
"""


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run stopped at step 2 of 4, ready to resume."""
    out = tmp_path_factory.mktemp("lock-runs")
    return run(config_from_mapping(tiny_recipe(out, train={"iterations": 4})), device="cpu", quiet=True,
               stop_after=2).run_dir


def _holder(run_dir: Path, mode: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, runlock.__file__, str(run_dir), mode],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _resume(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["train", "--resume", str(run_dir), "--device", "cpu", "--quiet"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def _files(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file() and p.name != LOCK_NAME}


def test_a_held_run_directory_is_refused_in_process(stopped_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _files(stopped_run)
    with RunDirLock(stopped_run):
        code, _, err = _resume(stopped_run, capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"in use by process {os.getpid()}" in err and str(stopped_run) in err
    assert _files(stopped_run) == before  # nothing written, nothing interleaved


@pytest.mark.parametrize("mode", ("flock", "excl"))
def test_another_process_holds_it_then_dies(stopped_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    if mode == "excl":  # the portable fallback: O_CREAT | O_EXCL and the owner's liveness
        monkeypatch.setattr(runlock, "fcntl", None)
    holder = _holder(stopped_run, mode)
    try:
        with pytest.raises(RunDirBusyError, match=f"in use by process {holder.pid}"):
            RunDirLock(stopped_run).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (stopped_run / LOCK_NAME).read_text().strip() == str(holder.pid)  # stale: its owner is dead
    with RunDirLock(stopped_run):  # taken over
        assert (stopped_run / LOCK_NAME).read_text().strip() == str(os.getpid())


def test_two_processes_on_one_run_directory(stopped_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A second `resnets train --resume` while another process trains there: refused; after that
    process is killed (-9), the resume takes the directory over and completes the run."""
    holder = _holder(stopped_run, "flock")
    try:
        code, _, err = _resume(stopped_run, capsys)
        assert code == 2 and f"in use by process {holder.pid}" in err, err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    code, out, err = _resume(stopped_run, capsys)
    assert code == 0 and "4 steps" in out, err
    assert (stopped_run / "final.json").is_file()


def test_runs_started_together_get_their_own_directories(tmp_path: Path) -> None:
    barrier = threading.Barrier(8)
    made: list[Path] = []

    def start() -> None:
        barrier.wait()
        made.append(new_run_dir(tmp_path, "same-name"))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 8 and len(set(made)) == 8 and all(p.is_dir() for p in made)
