import pytest
import torch
from deploy_helpers import build

from resnets.deploy import inference_model


def test_inference_model_matches_the_eval_model_on_cpu() -> None:
    model, side = build("cifar_option_A")
    model.train()  # the caller's mode must survive
    fast = inference_model(model, device="cpu")
    x = torch.randn(2, 3, side, side)
    out = fast(x)
    assert model.training
    assert not out.requires_grad and out.dtype == torch.float32
    with torch.no_grad():
        torch.testing.assert_close(out, model.eval()(x), atol=1e-5, rtol=1e-5)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())


def test_channels_last_on_cpu_gives_the_same_result() -> None:
    model, side = build("basic_resnet18")
    x = torch.randn(2, 3, side, side)
    a = inference_model(model, device="cpu")(x)
    b = inference_model(model, device="cpu", channels_last=True, fold=False)(x)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_compiled_cpu_inference_keeps_fp32_results(tmp_path, monkeypatch) -> None:
    # torch.compile with frozen weights (folded into the graph): the same function to fp32 rounding.
    # A fresh inductor cache: kernels cached by a run under another ATEN_CPU_CAPABILITY on the same
    # machine were measured to be reused and give wrong outputs (which the build-time check refuses)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    model, side = build("cifar_option_A")
    fast = inference_model(model, device="cpu", backend="torch", precision="fp32", compile=True)
    x = torch.randn(3, 3, side, side)
    with torch.no_grad():
        ref = model.eval()(x)
    out = fast(x)
    assert out.dtype == torch.float32
    assert float((out - ref).abs().max()) <= 1e-4 * float(ref.abs().max())
    assert fast.check_error is not None and fast.check_error <= 1e-4


def test_bf16_on_a_cpu_without_native_bf16_is_refused(monkeypatch) -> None:
    import resnets.cpu_features as cpu_features

    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: frozenset({"avx2"}))
    model, _ = build("plain20")
    with pytest.raises(ValueError, match="AVX512-BF16"):
        inference_model(model, device="cpu", bf16=True)


@pytest.mark.gpu
def test_cuda_inference_is_bf16_channels_last_and_close() -> None:
    model, side = build("basic_resnet18")
    fast = inference_model(model, device="cuda", compile=True)
    x = torch.randn(4, 3, side, side)
    out = fast(x.cuda())
    assert out.dtype == torch.float32 and out.device.type == "cuda"
    with torch.no_grad():
        ref = model.eval()(x)
    assert (out.cpu() - ref).abs().max() <= 0.1 * ref.abs().max()  # bf16 precision
