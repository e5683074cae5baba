"""The pieces: alternation order, the CIFAR reference, twins with our weights."""

from __future__ import annotations

import pytest
import torch

from resnets import create_model
from resnets.bench import ReferenceCifarResNet, get_twin
from resnets.bench.config import BenchConfig
from resnets.bench.timing import alternate, summarize
from resnets.bench.workloads import Setup, Side, build_pair
from resnets.runtime import Runtime


def test_alternate_swaps_the_order_every_repetition() -> None:
    calls: list[str] = []
    sides = [Side("ours", "", lambda: calls.append("ours")), Side("theirs", "", lambda: calls.append("theirs"))]
    rates = alternate(sides, warmup=1, reps=3, steps=2, batch=4, device=torch.device("cpu"))
    timed = calls[2:]  # after one warm-up step per side
    assert timed == ["ours"] * 2 + ["theirs"] * 2 + ["theirs"] * 2 + ["ours"] * 2 + ["ours"] * 2 + ["theirs"] * 2
    assert {k: len(v) for k, v in rates.items()} == {"ours": 3, "theirs": 3}


def test_summarize() -> None:
    s = summarize([10.0, 30.0, 20.0])
    assert (s["median"], s["min"], s["max"]) == (20.0, 10.0, 30.0)
    assert s["spread"] == pytest.approx(1.0)


@pytest.mark.parametrize("depth", [20, 56])
def test_reference_cifar_matches_our_parameter_count(depth: int) -> None:
    ref = ReferenceCifarResNet(depth)
    ours = create_model(f"resnet{depth}")
    assert sum(p.numel() for p in ref.parameters()) == sum(p.numel() for p in ours.parameters())
    assert ref(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_reference_cifar_rejects_bad_depth() -> None:
    with pytest.raises(ValueError, match="6n\\+2"):
        ReferenceCifarResNet(21)


def test_torchvision_twin_gets_our_weights() -> None:
    cfg = BenchConfig(model="resnet18", device="cpu")
    runtime = Runtime(device=torch.device("cpu"))
    setup = Setup(cfg=cfg, runtime=runtime, twin_runtime=runtime, graphs=False,
                  train_batches=lambda: None, infer_batches=lambda: None, num_classes=7, in_chans=3)  # type: ignore[arg-type,return-value]
    ours, theirs = build_pair(setup, get_twin("resnet18"))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), theirs.eval()(x))


def test_config_rejects_unknown_choices() -> None:
    with pytest.raises(ValueError, match="precision"):
        BenchConfig(precision="fp16")
    with pytest.raises(ValueError, match="compile"):
        BenchConfig(compile="yes")
    with pytest.raises(ValueError, match="twin_precision='bf16' is not one of"):
        BenchConfig(twin_precision="bf16")


def test_the_twin_runs_in_our_precision_or_in_fp32() -> None:
    ours = Runtime(device=torch.device("cpu"), autocast_dtype=torch.bfloat16, channels_last=True)
    assert BenchConfig().twin_runtime(ours) is ours
    fp32 = BenchConfig(twin_precision="fp32").twin_runtime(ours)
    assert fp32.autocast_dtype is None and fp32.channels_last is True and fp32.device == ours.device
    assert ours.autocast_dtype is torch.bfloat16  # ours is left as it was


def test_cpu_peak_memory_sees_a_large_allocation() -> None:
    from resnets.bench.memory import cpu_rss_supported, peak_cpu_bytes

    if not cpu_rss_supported():
        pytest.skip("no /proc peak-RSS reset on this OS")
    size = 64 * 2**20

    def allocate() -> None:
        t = torch.ones(size // 4)  # 64 MiB of float32, touched
        assert float(t[-1]) == 1.0

    assert peak_cpu_bytes(allocate) >= 0.9 * size
    assert peak_cpu_bytes(lambda: None) < 0.5 * size
