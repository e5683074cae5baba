import pytest
import torch
from train_helpers import tiny_recipe

import resnets.train.assemble as run_module
from resnets.io.checkpoint import load_checkpoint
from resnets.train import NonFiniteLossError, config_from_mapping, run


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real_build = run_module.build_model
    calls = {"train_forwards": 0}

    def build_with_a_nan_at_step_7(cfg, bundle):
        model = real_build(cfg, bundle)

        def poison(module, inputs, output):
            if not module.training:
                return output
            calls["train_forwards"] += 1
            return output * float("nan") if calls["train_forwards"] == 8 else output  # step index 7

        model.register_forward_hook(poison)
        return model

    monkeypatch.setattr(run_module, "build_model", build_with_a_nan_at_step_7)
    cfg = config_from_mapping(tiny_recipe(tmp_path, train={"iterations": 12, "eval_every": 3, "log_every": 50}))
    with pytest.raises(NonFiniteLossError) as info:
        run(cfg, device="cpu", quiet=True)
    message = str(info.value)
    assert "at step 7" in message and "nan" in message
    assert "optim.lr" in message and "fp32" in message
    assert "(step 6)" in message

    (run_dir,) = tmp_path.iterdir()
    ckpt = load_checkpoint(run_dir / "last.safetensors")
    assert ckpt.step == 6 and ckpt.state is not None and ckpt.state["step"] == 6
    assert all(torch.isfinite(t).all() for t in ckpt.weights.values())

