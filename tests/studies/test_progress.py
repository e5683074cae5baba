"""Progress inside a study: the time left from measured step times, a warning when it is hours on
a CPU, plain lines (no bar frames) in a log file, and one line per network."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections import Counter

from resnets.cli import main
from resnets.studies.nets import NetSpec
from resnets.studies.pool import task_weight
from resnets.studies.progress import LINE_EVERY_S, Progress, ProgressEvent, duration
from resnets.studies.recipe import Recipe

NET_LINE = re.compile(r"^\s*(plain|residual)-(\d+)\s+seed (\d+):")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _progress(weights: dict[str, float], *, device: str = "cpu", workers: int = 1) -> tuple[Progress, io.StringIO, Clock]:
    out, clock = io.StringIO(), Clock()
    return Progress(weights=weights, finished=0, workers=workers, device=device, quiet=False,
                    describe=lambda r: f"{r['key']}: done", out=out, clock=clock), out, clock


def test_time_left_is_measured_step_time_times_steps_left():
    p, out, _ = _progress({"a": 100.0, "b": 300.0})  # b: three times a's depth x iterations
    assert p.seconds_left() is None  # nothing measured yet
    p.update(ProgressEvent(key="a", step=5, total=100, elapsed=3.0))  # set-up 2 s + 5 steps of 0.2 s
    assert p.seconds_left() is None and out.getvalue() == ""
    p.update(ProgressEvent(key="a", step=15, total=100, elapsed=5.0))  # 0.2 s per step
    # a: 85 steps x 0.2 s; b (not started): set-up 2 s + 3 x a's 20 s; one network at a time
    assert abs(p.seconds_left() - (85 * 0.2 + 2.0 + 60.0)) < 1e-9
    assert out.getvalue().startswith("estimate: about 79 s for the 2 networks left")
    assert "warning" not in out.getvalue()


def test_hours_on_a_cpu_are_announced_with_a_warning_and_the_fix():
    p, out, _ = _progress({"a": 1.0})
    p.update(ProgressEvent(key="a", step=5, total=64000, elapsed=1.0))
    p.update(ProgressEvent(key="a", step=15, total=64000, elapsed=2.0))  # 0.1 s x 64k steps: 1.8 h
    text = out.getvalue()
    assert text.startswith("warning: estimate: about 1.8 h") and "--iterations" in text and "--device cuda" in text
    gpu, gpu_out, _ = _progress({"a": 1.0}, device="cuda:0")
    gpu.update(ProgressEvent(key="a", step=5, total=64000, elapsed=1.0))
    gpu.update(ProgressEvent(key="a", step=15, total=64000, elapsed=2.0))
    assert "warning" not in gpu_out.getvalue()


def test_without_a_terminal_progress_lines_are_plain_and_spaced():
    p, out, clock = _progress({"a": 1.0, "b": 1.0})
    p.update(ProgressEvent(key="a", step=5, total=100, elapsed=1.0))
    p.update(ProgressEvent(key="a", step=15, total=100, elapsed=2.0))
    p.update(ProgressEvent(key="a", step=50, total=100, elapsed=5.5))  # too soon for another line
    clock.now += LINE_EVERY_S
    p.update(ProgressEvent(key="a", step=60, total=100, elapsed=6.5))
    p.finish("a", {"key": "a"})
    p.finish("b", {"key": "b"})
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and "\r" not in out.getvalue()
    assert lines[1].startswith("progress: 0/2 networks done; running a 60/100")
    assert lines[2].startswith("a: done [1/2, about") and lines[3] == "b: done [2/2]"


def test_task_weight_is_depth_times_iterations():
    recipe = Recipe(iterations=50, depths=(8,))
    assert task_weight((NetSpec(kind="plain", depth=56), recipe, 4)) == 56 * 50
    assert task_weight("anything else") == 1.0
    assert duration(42) == "42 s" and duration(600) == "10 min" and duration(7200) == "2.0 h"


def _one_line_per_network(text: str, keys: set[tuple[str, str, str]]) -> None:
    assert "\r" not in text
    counts = Counter(m.groups() for m in map(NET_LINE.match, text.splitlines()) if m)
    assert counts == Counter({k: 1 for k in keys}), text


def test_a_study_in_a_log_file_has_no_bar_frames_and_one_line_per_network(tmp_path):
    """Two worker processes (their progress travels back through the pool's queue), output to a file."""
    log = tmp_path / "log.txt"
    with log.open("wb") as f:
        done = subprocess.run([sys.executable, "-m", "resnets", "study", "gradients", "--depths", "8", "14",
                               "--seeds", "0", "--iterations", "30", "--eval-every", "15", "--batch-size", "32",
                               "--workers", "2", "--out", str(tmp_path / "run")], stdout=f, stderr=subprocess.STDOUT,
                              env={**os.environ, "RESNETS_CACHE": str(tmp_path / "cache")}, check=False, timeout=600)
    text = log.read_bytes().decode()
    assert done.returncode == 0, text
    _one_line_per_network(text, {(k, d, "0") for k in ("plain", "residual") for d in ("8", "14")})
    assert "estimate: about" in text and "gradients report:" in text


def test_identity_prints_each_network_once(tmp_path, capsys):
    code = main(["study", "identity", "--depths", "8", "--seeds", "0", "1", "--iterations", "6", "--eval-every", "3",
                 "--batch-size", "32", "--workers", "1", "--blocks", "2", "--out", str(tmp_path / "run")])
    assert code == 0
    _one_line_per_network(capsys.readouterr().out, {(k, "8", s) for k in ("plain", "residual") for s in ("0", "1")})


def test_finished_networks_time_the_rest_with_every_overhead():
    p, out, clock = _progress({"a": 100.0, "b": 200.0, "c": 100.0})
    p.update(ProgressEvent(key="a", step=5, total=100, elapsed=1.0))  # a starts at clock 0 - 1 s
    p.update(ProgressEvent(key="a", step=15, total=100, elapsed=2.0))  # 0.1 s per step
    p.update(ProgressEvent(key="b", step=5, total=100, elapsed=1.0))
    p.update(ProgressEvent(key="b", step=15, total=100, elapsed=3.0))  # 0.2 s per step
    clock.now = 19.0
    p.finish("a", {"key": "a"})  # 20 s wall for 10 s of steps: twice the steps' time
    # b: 85 steps x 0.2 s x 2; c (not started): a's 20 s per 100 of weight
    assert abs(p.seconds_left() - (85 * 0.2 * 2 + 20.0)) < 1e-9
