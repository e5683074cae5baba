"""Ctrl-C (SIGINT) and SIGTERM during training: the step in flight is finished and saved, the
process says on stderr where it stopped and the exact command that resumes it, exits 130 / 143,
and that command carries the run on to weights equal to an uninterrupted run's (CPU, deterministic)."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch
import torch
from robust_helpers import PYTHON_PATHS, REPO, run_dirs, tiny_recipe, write_recipe

from resnets.io.checkpoint import read_metadata

ITERATIONS = 200
# checkpoints only at the end: whatever an interruption keeps, the interruption saved
TRAIN = {"iterations": ITERATIONS, "eval_every": 4, "checkpoint_every": 1000}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*PYTHON_PATHS, env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def _resnets(argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "resnets", *argv]


def _interrupt(argv: list[str], *, after_step: int, signum: int, tmp_path: Path) -> tuple[int, str]:
    """Run ``argv`` with stdout piped, send ``signum`` once an evaluation line past ``after_step``
    has been printed; returns (exit code, stderr)."""
    err_path = tmp_path / f"stderr-{signum}.txt"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(_resnets(argv), stdout=subprocess.PIPE, stderr=err, text=True, env=_env(), cwd=REPO)
        assert proc.stdout is not None
        for line in proc.stdout:
            match = re.search(r"\bstep (\d+) \|", line)
            if match and int(match.group(1)) > after_step:
                proc.send_signal(signum)
                break
        proc.stdout.read()
        code = proc.wait(timeout=300)
    return code, err_path.read_text()


def _stopped_at(stderr: str, run_dir: Path, signum: int, *, total: int = ITERATIONS) -> tuple[int, list[str]]:
    """The step the message names and the resume command it prints, checked against the run directory."""
    name = signal.Signals(signum).name
    match = re.search(rf"interrupted \({name}\) at step (\d+) of {total}; checkpoint saved in (\S+)", stderr)
    assert match, stderr
    assert Path(match.group(2)) == run_dir
    step = int(match.group(1))
    assert int(read_metadata(run_dir / "last.safetensors")["step"]) == step  # the step it names is the one saved
    command = re.search(r"resume with: (.+)", stderr)
    assert command, stderr
    argv = shlex.split(command.group(1))
    assert argv[:4] == ["resnets", "train", "--resume", str(run_dir)]
    return step, argv[1:]


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="POSIX signals")
def test_sigint_then_sigterm_then_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    config = write_recipe(tmp_path / "tiny.yaml", tiny_recipe(tmp_path / "runs", train=TRAIN))
    reference = write_recipe(tmp_path / "ref.yaml", tiny_recipe(tmp_path / "ref", train=TRAIN))
    done = subprocess.run(_resnets(["train", "--config", str(reference), "--device", "cpu", "--quiet"]),
                          env=_env(), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr

    code, stderr = _interrupt(["train", "--config", str(config), "--device", "cpu"], after_step=0,
                              signum=signal.SIGINT, tmp_path=tmp_path)
    assert code == 130, stderr
    [run_dir] = run_dirs(tmp_path / "runs")
    first, resume_argv = _stopped_at(stderr, run_dir, signal.SIGINT)
    assert 4 <= first < ITERATIONS
    assert resume_argv == ["train", "--resume", str(run_dir), "--device", "cpu"]

    code, stderr = _interrupt(resume_argv, after_step=first, signum=signal.SIGTERM, tmp_path=tmp_path)
    assert code == 143, stderr
    second, resume_argv = _stopped_at(stderr, run_dir, signal.SIGTERM)
    assert first < second < ITERATIONS

    done = subprocess.run(_resnets(resume_argv), env=_env(), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert run_dirs(tmp_path / "runs") == [run_dir]  # every resume continued the same run
    ours = safetensors.torch.load_file(str(run_dir / "last.safetensors"))
    ref = safetensors.torch.load_file(str(run_dirs(tmp_path / "ref")[0] / "last.safetensors"))
    assert ours.keys() == ref.keys()
    for key in ref:
        assert torch.equal(ours[key], ref[key]), key
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(4, ITERATIONS + 1, 4))
    losses = [json.loads(line) for line in (run_dir / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in losses] == list(range(50, ITERATIONS + 1, 50))  # train.log_every's default


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="POSIX signals and process groups")
def test_ctrl_c_to_the_process_group_with_decode_workers(tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches the decode workers too: they leave it to the main process,
    which saves, stops them and exits 130, with no traceback and no process left behind."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("a", "b", "c"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / "images" / label / f"{i}.png")
    recipe = tiny_recipe(tmp_path / "runs", train={"iterations": 100_000, "log_every": 5, "eval_every": 50})
    recipe["data"] = {"name": "imagefolder", "root": str(tmp_path / "images"), "batch_size": 4, "workers": 2,
                      "device_resident": "no", "decode_cache": False}
    config = write_recipe(tmp_path / "folder.yaml", recipe)
    proc = subprocess.Popen(_resnets(["train", "--config", str(config), "--device", "cpu"]), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(), cwd=REPO, start_new_session=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("step 200/"):  # the workers have served batches for a while, evaluations too
            os.killpg(proc.pid, signal.SIGINT)
            break
    proc.stdout.read()
    stderr = proc.stderr.read() if proc.stderr is not None else ""
    assert proc.wait(timeout=300) == 130, stderr
    [run_dir] = run_dirs(tmp_path / "runs")
    _stopped_at(stderr, run_dir, signal.SIGINT, total=100_000)
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    with pytest.raises(ProcessLookupError):  # no worker outlived the run
        os.killpg(proc.pid, 0)
