"""What `resnets train` prints when its output goes to a file: the start banner first, then a
progress line every ``train.log_every`` steps, written while the run is still going."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from resnets.models import create_model

REPO = Path(__file__).resolve().parents[2]
LOG_EVERY = 5


def _recipe(tmp_path: Path, **train: object) -> Path:
    recipe = {
        "model": {"name": "resnet20"},
        "data": {"name": "synthetic", "synthetic_shape": [1, 8, 8], "synthetic_classes": 3, "synthetic_size": 96,
                 "batch_size": 16, "val_fraction": 0.2},
        "schedule": {"name": "cosine", "unit": "iter", "warmup": 2},
        "train": {"eval_every": 1000, "log_every": LOG_EVERY, "threads": 1, "tensorboard": False,
                  "out_dir": str(tmp_path / "runs"), "name": "tiny", **train},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _wait_for_lines(path: Path, proc: subprocess.Popen, count: int) -> list[str]:
    """The file's lines once ``count`` progress lines are in it (the process still running)."""
    give_up = time.monotonic() + 600  # a guard against hanging, far beyond the few seconds this takes
    while time.monotonic() < give_up:
        lines = path.read_text().splitlines()
        if sum(line.startswith("step ") for line in lines) >= count:
            return lines
        assert proc.poll() is None, path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} progress lines after 600 s: {path.read_text()}")


@pytest.mark.skipif(sys.platform != "linux", reason="POSIX signals")
def test_banner_and_progress_lines_reach_a_file_while_training(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    with open(out, "w") as fh:  # a file, not a terminal: no progress bar
        proc = subprocess.Popen([sys.executable, "-m", "resnets", "train", "--config", str(_recipe(tmp_path,
                                 iterations=100_000)), "--device", "cpu"], stdout=fh, stderr=subprocess.PIPE,
                                text=True, env=env, cwd=tmp_path)
        try:
            lines = _wait_for_lines(out, proc, 3)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr  # still training when the lines were read, stopped by the signal
    [run_dir] = (tmp_path / "runs").glob("tiny-*")
    params = sum(p.numel() for p in create_model("resnet20", num_classes=3, in_chans=1).parameters())
    banner = "\n".join(lines[: lines.index(next(line for line in lines if line.startswith("step ")))])
    assert f"train resnet20 ({params / 1e6:.2f} M parameters) on synthetic (built in)" in banner
    assert "3 classes, 1x8x8 input, images train 77 / val 19" in banner
    assert "100,000 steps" in banner and "device: cpu, fp32" in banner
    assert f"run directory: {run_dir}" in banner
    progress = [line for line in lines if line.startswith("step ")]
    steps = [int(re.match(r"step ([\d,]+)/100,000 \| loss [\d.]+ \| lr ", line).group(1).replace(",", ""))
             for line in progress]
    assert steps == [LOG_EVERY * (i + 1) for i in range(len(steps))]
    assert all(re.search(r"\| [\d,]+ img/s, [\d.]+ step/s \|", line) for line in progress)


def test_warmup_covering_most_of_the_run_is_warned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from resnets.train import load_config, run

    cfg = load_config(_recipe(tmp_path, iterations=6), ["schedule.warmup=5"])
    run(cfg, device="cpu")
    assert "warning: the warm-up (5 steps) covers 83% of this 6-step run" in capsys.readouterr().out
