import pytest
import torch

from resnets.train import config_from_mapping, run
from resnets.train.config import LoopConfig, OptimConfig
from resnets.train.optim import build_optimizer
from resnets.train.runtime import make_runtime

from train_helpers import tiny_recipe


def test_auto_precision_and_memory_format_follow_the_device(monkeypatch):
    cpu = make_runtime(LoopConfig(epochs=1), device="cpu")
    assert cpu.autocast_dtype is None and cpu.channels_last is True  # measured faster on the CPU too
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # resolved as on a machine with a GPU
    cuda = make_runtime(LoopConfig(epochs=1), device="cuda")
    assert cuda.autocast_dtype is torch.bfloat16 and cuda.channels_last is True
    forced = make_runtime(LoopConfig(epochs=1, precision="fp32", channels_last=False), device="cuda")
    assert forced.autocast_dtype is None and forced.channels_last is False


def test_a_device_this_machine_lacks_is_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"CUDA is not available on this machine; use --device cpu \(or auto\)"):
        make_runtime(LoopConfig(epochs=1), device="cuda:1")
    with pytest.raises(ValueError, match="'gpu' is not a device name; use one of auto, cpu, cuda"):
        make_runtime(LoopConfig(epochs=1), device="gpu")
    assert make_runtime(LoopConfig(epochs=1), device="auto").device.type == "cpu"


@pytest.mark.gpu
def test_bf16_channels_last_run_on_cuda_saves_a_cpu_loadable_checkpoint(tmp_path):
    from resnets.train.predict import load_predictor

    opt = build_optimizer(torch.nn.Linear(2, 2).cuda(), OptimConfig(), device=torch.device("cuda"))
    assert opt.param_groups[0].get("fused") is True
    recipe = tiny_recipe(tmp_path, train={"deterministic": False, "iterations": 20, "eval_every": 10})
    result = run(config_from_mapping(recipe), device="cuda", quiet=True)
    assert all(torch.isfinite(torch.tensor(result.losses)))
    assert sum(result.losses[-5:]) < sum(result.losses[:5])
    predictor = load_predictor(result.run_dir, device="cpu")  # saved contiguous, unwrapped, on the CPU
    assert next(predictor.model.parameters()).device.type == "cpu"
