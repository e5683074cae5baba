import pytest
import torch
from train_helpers import tiny_recipe

from resnets.train import config_from_mapping, run
from resnets.train.config import LoopConfig, OptimConfig
from resnets.train.optim import build_optimizer
from resnets.train.runtime import make_runtime


def test_auto_precision_and_memory_format_follow_the_device():
    cpu = make_runtime(LoopConfig(epochs=1), device="cpu")
    assert cpu.autocast_dtype is None and cpu.channels_last is True  # measured faster on the CPU too
    cuda = make_runtime(LoopConfig(epochs=1), device="cuda")
    assert cuda.autocast_dtype is torch.bfloat16 and cuda.channels_last is True
    forced = make_runtime(LoopConfig(epochs=1, precision="fp32", channels_last=False), device="cuda")
    assert forced.autocast_dtype is None and forced.channels_last is False


@pytest.mark.gpu
def test_bf16_channels_last_run_on_cuda_saves_a_cpu_loadable_checkpoint(tmp_path):
    from resnets.deploy.predict import load_predictor

    opt = build_optimizer(torch.nn.Linear(2, 2).cuda(), OptimConfig(), device=torch.device("cuda"))
    assert opt.param_groups[0].get("fused") is True
    recipe = tiny_recipe(tmp_path, train={"deterministic": False, "iterations": 20, "eval_every": 10})
    result = run(config_from_mapping(recipe), device="cuda", quiet=True)
    assert all(torch.isfinite(torch.tensor(result.losses)))
    assert sum(result.losses[-5:]) < sum(result.losses[:5])
    predictor = load_predictor(result.run_dir, device="cpu")  # saved contiguous, unwrapped, on the CPU
    assert next(predictor.model.parameters()).device.type == "cpu"
