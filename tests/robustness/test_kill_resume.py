"""kill -9 at random moments (checkpoint writes included), five times, then --resume: the run
completes, every checkpoint left behind stays readable, and the final weights equal an
uninterrupted run's bit for bit (CPU, deterministic mode)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import safetensors.torch
import torch
from robust_helpers import PYTHON_PATHS, REPO, run_dirs, tiny_recipe, write_recipe

from resnets.io.checkpoint import STATE_SUFFIX, WEIGHTS_SUFFIX, load_checkpoint, read_metadata

ITERATIONS = 60
# Where each of the five kills lands: a random moment (a random number of steps on, then a
# random fraction of a step: timing by the clock alone depends on the machine's load), or paused inside a checkpoint write
# (before the k-th fsync / os.replace of a ``last.*`` file; an even replace count is the gap
# between the weights and the state file, which tears the pair).
KILLS = [("replace", 5), ("random", None), ("replace", 8), ("fsync", 7), ("random", None)]


class Launcher:
    """The pre-imported process of kill_launcher.py."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("kill_launcher.py"))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO,
        )
        assert json.loads(self.proc.stdout.readline()) == {"ready": True}

    def start(self, argv: list[str], *, log: Path, pause: dict | None = None) -> int:
        self.proc.stdin.write(json.dumps({"argv": argv, "log": str(log), "pause": pause}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())["pid"]

    def wait(self) -> int:
        return json.loads(self.proc.stdout.readline())["status"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*PYTHON_PATHS, env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def _wait_for(path: Path, pid: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists():
            return True
        try:
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                return False
        except ChildProcessError:  # not our child (the launcher's): poll its liveness instead
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
        time.sleep(0.01)
    return False


def _last_step(out_dir: Path) -> int:
    dirs = run_dirs(out_dir)
    try:
        return int(read_metadata(dirs[-1] / "last.safetensors")["step"]) if dirs else 0
    except (FileNotFoundError, ValueError):
        return 0


def _wait_for_step(out_dir: Path, step: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if _last_step(out_dir) >= step:
            return True
        time.sleep(0.005)
    return False


def _check_readable(run_dir: Path) -> dict[str, int]:
    """Every checkpoint in ``run_dir`` loads (torn pairs completed); returns tag -> step."""
    steps = {}
    for weights in sorted(run_dir.glob(f"*{WEIGHTS_SUFFIX}")):
        tag = weights.name[: -len(WEIGHTS_SUFFIX)]
        ckpt = load_checkpoint(weights, with_state=True)
        assert ckpt.weights, weights
        if (run_dir / f"{tag}{STATE_SUFFIX}").is_file():
            assert ckpt.state is not None and ckpt.state["step"] == ckpt.step
        steps[tag] = ckpt.step
    return steps


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="forks a pre-imported process and reads /proc/self/fd")
def test_five_kills_then_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    rng = random.Random(1234)
    config = write_recipe(tmp_path / "tiny.yaml", tiny_recipe(tmp_path / "runs", train={"iterations": ITERATIONS}))
    reference_cfg = write_recipe(tmp_path / "ref.yaml",
                                 tiny_recipe(tmp_path / "ref", train={"iterations": ITERATIONS}))
    fresh = ["train", "--config", str(config), "--device", "cpu", "--quiet"]
    launcher = Launcher(_env())
    torn_seen, killed_in_write = 0, 0
    try:
        launcher.start(["train", "--config", str(reference_cfg), "--device", "cpu", "--quiet"],
                       log=tmp_path / "reference.log")
        assert launcher.wait() == 0, (tmp_path / "reference.log").read_text()
        for i, (where, count) in enumerate(KILLS):
            dirs = [d for d in run_dirs(tmp_path / "runs") if (d / "last.safetensors").is_file()]
            argv = ["train", "--resume", str(dirs[-1]), "--device", "cpu", "--quiet"] if dirs else fresh
            marker = tmp_path / f"paused-{i}"
            pause = {"at": where, "count": count, "marker": str(marker)} if count else None
            target = _last_step(tmp_path / "runs") + rng.randint(2, 8)
            pid = launcher.start(argv, log=tmp_path / f"round-{i}.log", pause=pause)
            if pause:
                assert _wait_for(marker, pid, timeout=120), (tmp_path / f"round-{i}.log").read_text()
                killed_in_write += 1
            else:
                assert _wait_for_step(tmp_path / "runs", target, timeout=120), (tmp_path / f"round-{i}.log").read_text()
                time.sleep(rng.uniform(0.0, 0.05))  # then somewhere within a step (a checkpoint write, maybe)
            os.kill(pid, signal.SIGKILL)
            status = launcher.wait()
            assert status == -signal.SIGKILL, (status, (tmp_path / f"round-{i}.log").read_text())

            run_dir = run_dirs(tmp_path / "runs")[-1]
            last, state = run_dir / "last.safetensors", run_dir / "last.state.pt"
            if last.is_file() and state.is_file():
                torn_seen += read_metadata(last)["step"] != str(torch.load(state, weights_only=True)["step"])
            _check_readable(run_dir)
    finally:
        launcher.close()

    assert killed_in_write == 3 and torn_seen >= 1  # the kills did land inside checkpoint writes
    dirs = [d for d in run_dirs(tmp_path / "runs") if (d / "last.safetensors").is_file()]
    assert len(dirs) == 1  # every round after the first resumed the same run
    assert load_checkpoint(dirs[0] / "last.safetensors").step < ITERATIONS  # the last round still has work
    done = subprocess.run(
        [sys.executable, "-m", "resnets", "train", "--resume", str(dirs[0]), "--device", "cpu", "--quiet"],
        env=_env(), cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert f"{ITERATIONS} steps" in done.stdout

    assert _check_readable(dirs[0])["last"] == ITERATIONS
    assert not list(dirs[0].glob(".*.tmp"))  # no staged file outlives the run
    ours = safetensors.torch.load_file(str(dirs[0] / "last.safetensors"))
    ref = safetensors.torch.load_file(str(run_dirs(tmp_path / "ref")[0] / "last.safetensors"))
    assert ours.keys() == ref.keys()
    for key in ref:
        assert torch.equal(ours[key], ref[key]), key
    records = [json.loads(line) for line in (dirs[0] / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(4, ITERATIONS + 1, 4))  # no duplicated or torn records
