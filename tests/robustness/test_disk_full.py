"""The disk fills up while a run writes its checkpoints or its logs: the run stops with one
line that names the directory and "no space left", the previous checkpoint is intact, and
resuming once there is space again ends with the weights of an uninterrupted run."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest
import safetensors.torch
import torch
from robust_helpers import run_dirs, tiny_recipe, write_recipe

import resnets.io.atomic as atomic
import resnets.io.checkpoint as ck
import resnets.train.rundir.log as runlog
from resnets.cli import main
from resnets.io.checkpoint import load_checkpoint
from resnets.train import config_from_mapping, run


def _no_space() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _recipe(out: Path) -> dict:
    # No validation split (no "best" file): "last" is written at steps 2, 4, 6; metrics at 3 and 6.
    return tiny_recipe(out, data={"val_fraction": 0.0},
                       train={"iterations": 6, "eval_every": 3, "checkpoint_every": 2})


def _train(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["train", *argv, "--device", "cpu", "--quiet"])
    return code, capsys.readouterr().err.strip()


def _assert_stopped_cleanly(code: int, err: str, run_dir: Path, what: str) -> None:
    assert code == 2 and len(err.splitlines()) == 1, err
    assert str(run_dir) in err and "no space left" in err and what in err, err
    assert load_checkpoint(run_dir / "last.safetensors").step == 2  # the previous checkpoint, whole
    assert not list(run_dir.glob(".*.tmp"))


def _resume_matches_uninterrupted(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _train(["--resume", str(run_dir)], capsys)
    assert code == 0, err
    reference = run(config_from_mapping(_recipe(tmp_path / "ref")), device="cpu", quiet=True)
    ours = safetensors.torch.load_file(str(run_dir / "last.safetensors"))
    ref = safetensors.torch.load_file(str(reference.run_dir / "last.safetensors"))
    assert all(torch.equal(ours[k], ref[k]) for k in ref)


@pytest.mark.slow
def test_disk_full_at_the_second_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = write_recipe(tmp_path / "tiny.yaml", _recipe(tmp_path / "runs"))
    writes = []
    real_write = ck.write_files_atomically

    def full_after_one(directory: Path, payloads: dict[str, bytes]) -> None:
        writes.append(sorted(payloads))
        if len(writes) >= 2:  # the disk is full from the second checkpoint on
            monkeypatch.setattr(atomic, "_stage", half_then_enospc)
        real_write(directory, payloads)

    def half_then_enospc(directory: Path, name: str, payload: bytes) -> Path:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload[: len(payload) // 2])
        os.unlink(tmp)  # as the real writer does when its write fails
        raise _no_space()

    monkeypatch.setattr(ck, "write_files_atomically", full_after_one)
    code, err = _train(["--config", str(config)], capsys)
    monkeypatch.undo()  # space is back
    run_dir = run_dirs(tmp_path / "runs")[0]
    assert len(writes) == 2
    _assert_stopped_cleanly(code, err, run_dir, "checkpoint 'last'")
    _resume_matches_uninterrupted(run_dir, tmp_path, capsys)


@pytest.mark.slow
def test_disk_full_while_writing_the_metrics_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    config = write_recipe(tmp_path / "tiny.yaml", _recipe(tmp_path / "runs"))

    def full_for_appends(path, mode="r", *args, **kwargs):  # noqa: ANN001, ANN002, ANN003 - open's signature
        if "a" in mode:
            raise _no_space()
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(runlog, "open", full_for_appends, raising=False)
    code, err = _train(["--config", str(config)], capsys)
    monkeypatch.undo()
    run_dir = run_dirs(tmp_path / "runs")[0]
    _assert_stopped_cleanly(code, err, run_dir, "metrics.jsonl")
    _resume_matches_uninterrupted(run_dir, tmp_path, capsys)
