"""Training on the CPU: bf16 with fp32 master weights and the loss in fp32, close to the fp32 step,
refused in one line where the CPU has no native bf16, a short run through the command line; a
failed torch.compile in one line."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import yaml
from torch import nn

import resnets.cpu_features as cpu_features
from resnets.cli import main
from resnets.models import create_model
from resnets.runtime import Runtime
from resnets.train.config import LoopConfig
from resnets.train.runtime import make_runtime
from resnets.train.step import step_body

NO_BF16 = frozenset({"sse4_2", "avx", "avx2", "fma"})  # an AVX2-only CPU, as /proc/cpuinfo names it
AMX = frozenset({"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"})


def _step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype | None):
    """One SGD step (momentum) of ``model`` in a CPU runtime with autocast ``dtype``; the runtime is
    built directly, so that the step runs on any CPU (emulated bf16 where it is not native)."""
    runtime = Runtime(device=torch.device("cpu"), autocast_dtype=dtype, channels_last=True)
    runtime.place(model).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    loss, correct = step_body(model, opt, runtime.prepare(x), y, loss_fn=nn.CrossEntropyLoss(), runtime=runtime,
                              grad_clip=None)
    update = torch.cat([p.detach().flatten() for p in model.parameters()]) - before
    return loss, update, opt


@pytest.mark.parametrize("seed", [0, 1])
def test_a_bf16_cpu_step_keeps_fp32_weights_and_state_and_is_close_to_the_fp32_step(seed: int) -> None:
    torch.manual_seed(seed)
    base = create_model("resnet20", num_classes=10)
    x, y = torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))  # (N, C, H, W), (N,)
    loss32, update32, _ = _step(copy.deepcopy(base), x, y, None)
    model = copy.deepcopy(base)
    loss16, update16, opt = _step(model, x, y, torch.bfloat16)

    # fp32 master weights: parameters, gradients and the optimizer's momentum stay fp32
    assert all(p.dtype == torch.float32 and p.grad is not None and p.grad.dtype == torch.float32
               for p in model.parameters())
    buffers = [s["momentum_buffer"] for s in opt.state.values()]
    assert len(buffers) == len(list(model.parameters())) and all(b.dtype == torch.float32 for b in buffers)
    assert loss16.dtype == torch.float32  # the loss is computed from fp32 logits

    # bf16 keeps 8 significant bits (unit roundoff 2**-9 ~ 0.2%): the loss, a mean over the batch
    # of log-softmax values, stays within 1% (several roundings in a row, none amplified); the
    # update goes through 19 bf16 convolutions backwards, so its size and direction are compared
    # (SGD follows the direction): cosine >= 0.95 and norm within 20%.
    assert abs(float(loss16) - float(loss32)) <= 1e-2 * abs(float(loss32))
    cosine = float(nn.functional.cosine_similarity(update16, update32, dim=0))
    assert cosine >= 0.95, cosine
    assert 0.8 <= float(update16.norm() / update32.norm()) <= 1.25


def test_bf16_training_is_refused_on_a_cpu_without_native_bf16(monkeypatch) -> None:
    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: NO_BF16)
    with pytest.raises(ValueError, match=r"AVX512-BF16 or AMX-BF16: this CPU has neither") as info:
        make_runtime(LoopConfig(epochs=1, precision="bf16"), device="cpu")
    message = str(info.value)
    assert "\n" not in message and message.endswith("use train.precision=fp32")


def test_a_onednn_cap_below_bf16_refuses_it_and_names_the_cap(monkeypatch) -> None:
    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: AMX)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    with pytest.raises(ValueError, match=r"ONEDNN_MAX_CPU_ISA=AVX2 rules out this CPU's AVX512-BF16 and AMX-BF16"):
        make_runtime(LoopConfig(epochs=1, precision="bf16"), device="cpu")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert make_runtime(LoopConfig(epochs=1, precision="bf16"), device="cpu").autocast_dtype is torch.bfloat16


def test_auto_stays_fp32_on_a_cpu_with_native_bf16(monkeypatch) -> None:
    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: AMX)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert make_runtime(LoopConfig(epochs=1), device="cpu").autocast_dtype is None
    assert make_runtime(LoopConfig(epochs=1, precision="fp32"), device="cpu").autocast_dtype is None


def test_the_train_command_refuses_bf16_without_it_exit_2_and_starts_nothing(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: NO_BF16)
    code = main(["train", "--config", "demo", "train.precision=bf16", f"train.out_dir={tmp_path}", "--device", "cpu",
                 "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "AVX512-BF16 or AMX-BF16" in err and "train.precision=fp32" in err
    assert not list(tmp_path.iterdir())  # no run directory was started


@pytest.mark.skipif(not cpu_features.cpu_has_bf16(), reason="this CPU has no native bf16 (AVX512-BF16 / AMX-BF16)")
def test_a_short_bf16_digits_run_through_the_command_line(tmp_path, capsys) -> None:
    code = main(["train", "--config", "demo", "train.precision=bf16", "train.epochs=3", "train.tensorboard=false",
                 f"train.out_dir={tmp_path}", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0
    assert "device: cpu, bfloat16" in out  # the start banner names the precision that runs
    (run_dir,) = [d for d in tmp_path.iterdir() if d.is_dir()]
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["precision"] == "bf16"
    final = json.loads((run_dir / "final.json").read_text())
    assert final["test"]["acc"] >= 0.85  # 3 epochs of the demo recipe learn the digits in bf16 too


def test_a_failed_torch_compile_is_one_line_naming_the_fix(monkeypatch, tmp_path) -> None:
    import torch._inductor.config as inductor_config

    from resnets.train import config_from_mapping, prepare_run

    monkeypatch.setattr(inductor_config.cpp, "cxx", (None, str(tmp_path / "no-such-g++")))  # no C++ compiler
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))  # nothing compiled before is reused
    cfg = config_from_mapping({"model": {"name": "resnet20", "num_classes": 3, "in_chans": 2},
                               "train": {"iterations": 1, "compile": True}})
    tiny = nn.Sequential(nn.Flatten(), nn.Linear(8, 3))  # (N, 2, 2, 2) -> (N, 3): cheap to trace
    runtime = Runtime(device=torch.device("cpu"))
    run = prepare_run(cfg, runtime, bundle=None, model_fn=lambda _cfg, _bundle: tiny)
    torch._dynamo.reset()
    try:
        with pytest.raises(ValueError, match=r"^train.compile=true: torch.compile could not build") as info:
            run.step_fn()(torch.randn(4, 2, 2, 2), torch.tensor([0, 1, 2, 0]))
    finally:
        torch._dynamo.reset()
    message = str(info.value)
    assert "\n" not in message and message.endswith("or set train.compile=false")


def test_a_bf16_trained_run_is_evaluated_in_fp32_on_a_cpu_without_bf16(monkeypatch, tmp_path, capsys) -> None:
    from train_helpers import tiny_recipe

    from resnets.train import config_from_mapping, run

    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: AMX)  # trained where bf16 is native (emulated here if not)
    result = run(config_from_mapping(tiny_recipe(tmp_path, train={"precision": "bf16"})), device="cpu", quiet=True)
    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: NO_BF16)  # evaluated on a CPU without it
    assert main(["eval", str(result.run_dir), "--device", "cpu", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # the same weights on the same images, in fp32 instead of bf16: the mean loss within 2% (bf16 rounding)
    assert out["samples"] == result.test["samples"] and out["loss"] == pytest.approx(result.test["loss"], rel=2e-2)
