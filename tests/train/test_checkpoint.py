import os

import pytest
import torch
from torch import nn

from resnets.io import atomic
from resnets.io import checkpoint as ck
from resnets.train.runtime import rng_state, set_rng_state


def model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))


def test_round_trip_with_weights_only_state(tmp_path):
    m = model(0)
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    m(torch.randn(5, 4)).sum().backward()
    opt.step()
    ck.save_checkpoint(tmp_path, "last", module=m, metadata={"model": "x"},
                       state={"step": 3, "optimizer": opt.state_dict(), "rng": rng_state()})
    loaded = ck.load_checkpoint(tmp_path / "last.safetensors")
    assert loaded.step == 3 and loaded.metadata["model"] == "x"
    assert all(torch.equal(loaded.weights[k], v) for k, v in m.state_dict().items())
    # the state file is plain data: loadable with weights_only=True
    raw = torch.load(tmp_path / "last.state.pt", weights_only=True)
    assert raw["optimizer"]["param_groups"][0]["momentum"] == 0.9
    set_rng_state(raw["rng"])


def test_a_failure_while_writing_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    ck.save_checkpoint(tmp_path, "last", module=model(0), metadata={}, state={"step": 1})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    real_stage = atomic._stage
    calls = []

    def crash_on_second_file(directory, name, payload):
        calls.append(name)
        if len(calls) == 2:  # the state file: write half of it, then die
            real_stage(directory, name + ".partial", payload[: len(payload) // 2])
            raise OSError("disk full")
        return real_stage(directory, name, payload)

    monkeypatch.setattr(atomic, "_stage", crash_on_second_file)
    with pytest.raises(OSError, match="disk full"):
        ck.save_checkpoint(tmp_path, "last", module=model(1), metadata={}, state={"step": 2})
    monkeypatch.undo()

    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if not p.name.endswith(".tmp")}
    assert after == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp") and "partial" not in p.name]
    loaded = ck.load_checkpoint(tmp_path)
    assert loaded.step == 1
    assert torch.equal(loaded.weights["0.weight"], model(0).state_dict()["0.weight"])


def test_a_torn_pair_is_refused(tmp_path):
    ck.save_checkpoint(tmp_path / "a", "last", module=model(0), metadata={}, state={"step": 1})
    ck.save_checkpoint(tmp_path / "b", "last", module=model(0), metadata={}, state={"step": 2})
    os.replace(tmp_path / "b" / "last.state.pt", tmp_path / "a" / "last.state.pt")
    with pytest.raises(ValueError, match="torn"):
        ck.load_checkpoint(tmp_path / "a")


def test_missing_checkpoint_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="run directory"):
        ck.resolve_checkpoint(tmp_path)
