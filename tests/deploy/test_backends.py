"""Every backend and precision against the fp32 torch model; refusals with one clear line."""

import sys

import pytest
import torch
from deploy_helpers import build

import resnets.cpu_features as cpu_features
from resnets.deploy import inference_model
from resnets.deploy.backends import BACKENDS, TOLERANCES, OutputMismatchError, available
from resnets.deploy.backends.base import check_outputs, relative_error

COMBOS = [(b, p) for b, entry in BACKENDS.items() for p in entry.precisions]


def images(n: int, side: int, *, seed: int) -> torch.Tensor:
    """Generated image-like batches: smooth random patterns, normalised (N, 3, side, side)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=g)
    x = torch.nn.functional.interpolate(coarse, size=(side, side), mode="bilinear", align_corners=False)
    x = x + 0.05 * torch.randn(n, 3, side, side, generator=g)
    return (x - 0.5) / 0.25


def _skip_unless_runs(backend: str, precision: str) -> None:
    if not available(backend):
        pytest.skip(f"{backend} is not installed")
    if precision == "bf16" and not cpu_features.cpu_has_bf16():
        pytest.skip("this CPU has no native bf16")


@pytest.mark.parametrize(("backend", "precision"), COMBOS)
def test_each_backend_and_precision_matches_the_fp32_model(backend: str, precision: str) -> None:
    _skip_unless_runs(backend, precision)
    model, side = build("cifar_option_B")
    calibration = [images(16, side, seed=s) for s in range(4)] if precision == "int8" else None
    fast = inference_model(model, device="cpu", backend=backend, precision=precision, calibration=calibration,
                           input_size=(3, side, side))
    assert (fast.backend, fast.precision) == (backend, precision)
    assert fast.check_error is not None and fast.check_error <= TOLERANCES[precision]
    x = images(6, side, seed=99)  # a batch it has not seen, of another size
    out = fast(x)
    assert out.dtype == torch.float32 and out.shape == (6, 10) and not out.requires_grad
    with torch.no_grad():
        ref = model.eval()(x)
    assert relative_error(out, ref) <= TOLERANCES[precision]
    if precision == "fp32":
        torch.testing.assert_close(out, ref, atol=1e-4 * float(ref.abs().max()), rtol=1e-4)


def test_bf16_is_refused_on_a_cpu_without_it(monkeypatch) -> None:
    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: frozenset({"sse4_2", "avx2", "avx512f"}))
    model, _ = build("plain20")
    for kwargs in ({"precision": "bf16"}, {"bf16": True}):
        with pytest.raises(ValueError, match="AVX512-BF16 or AMX-BF16") as info:
            inference_model(model, device="cpu", **kwargs)
        assert "\n" not in str(info.value)


def test_bf16_is_accepted_where_the_cpu_has_it(monkeypatch) -> None:
    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)  # a CPU that has it, with nothing capped
    model, side = build("plain20")
    fast = inference_model(model, device="cpu", precision="bf16", input_size=(3, side, side))
    assert fast.describe() == "torch bf16" and fast.check_error <= TOLERANCES["bf16"]


@pytest.mark.parametrize(("module", "backend", "extra"), [("openvino", "openvino", "openvino"),
                                                         ("onnxruntime", "onnxruntime", "onnx")])
def test_a_missing_extra_gives_one_line_with_the_pip_install(monkeypatch, module, backend, extra) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError, as when not installed
    model, side = build("plain20")
    with pytest.raises(ImportError) as info:
        inference_model(model, device="cpu", backend=backend, precision="fp32", input_size=(3, side, side))
    message = str(info.value)
    assert "\n" not in message and f"pip install resnets[{extra}]" in message and module in message


def test_the_extras_are_not_imported_for_the_torch_backend() -> None:
    code = ("import sys, torch; from resnets.deploy import inference_model; from resnets import create_model; "
            "inference_model(create_model('resnet20'), device='cpu', precision='fp32'); "
            "print(sorted(m for m in ('openvino', 'onnxruntime', 'nncf') if m in sys.modules))")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"backend": "tensorrt", "precision": "fp32"}, "unknown backend 'tensorrt'; choose one of torch"),
    ({"backend": "torch", "precision": "fp16"}, "unknown precision 'fp16'"),
    ({"backend": "torch", "precision": "int8"}, "backend 'torch' has no int8 path here"),
    ({"backend": "onnxruntime", "precision": "bf16"}, "has no bf16"),
    ({"backend": "openvino", "precision": "int8"}, "int8 needs calibration images"),
    ({"backend": "openvino", "precision": "fp32", "compile": True}, "compile is for backend 'torch'"),
    ({"backend": "onnxruntime", "precision": "fp32", "device": "cuda"}, "runs on the CPU here"),
])
def test_bad_choices_are_refused_in_one_line(kwargs, match) -> None:
    if kwargs["backend"] in ("openvino", "onnxruntime") and not available(kwargs["backend"]):
        pytest.skip(f"{kwargs['backend']} is not installed")
    model, _ = build("plain20")
    with pytest.raises(ValueError, match=match):
        inference_model(model, **{"device": "cpu", **kwargs})


def test_an_output_past_the_tolerance_is_refused() -> None:
    model, side = build("plain20")
    x = images(4, side, seed=1)
    with torch.no_grad():
        ref = model(x)
    scale = float(ref.abs().max())
    assert check_outputs(lambda t: model(t) + 0.5e-4 * scale, model, x, precision="fp32", label="m") <= 1e-4
    with pytest.raises(OutputMismatchError, match="more than the 0.0001 allowed for fp32"):
        check_outputs(lambda t: model(t) + 2e-4 * scale, model, x, precision="fp32", label="m")
    with pytest.raises(OutputMismatchError):
        check_outputs(lambda t: model(t) * float("nan"), model, x, precision="int8", label="m")


@pytest.mark.parametrize(("installed", "bf16", "asked", "expected"), [
    ({"torch", "onnxruntime", "openvino"}, True, {}, ("openvino", "bf16")),
    ({"torch", "onnxruntime"}, True, {}, ("torch", "bf16")),
    ({"torch", "onnxruntime", "openvino"}, False, {}, ("openvino", "fp32")),
    ({"torch", "onnxruntime"}, False, {}, ("onnxruntime", "fp32")),
    ({"torch"}, False, {}, ("torch", "fp32")),
    ({"torch", "onnxruntime", "openvino"}, True, {"precision": "fp32"}, ("openvino", "fp32")),
    ({"torch", "onnxruntime", "openvino"}, True, {"backend": "torch"}, ("torch", "bf16")),
    ({"torch"}, False, {"precision": "bf16"}, ("torch", "bf16")),  # then refused, naming the instruction set
    ({"torch", "onnxruntime", "openvino"}, True, {"images": 1}, ("torch", "bf16")),  # nothing to convert
    ({"torch", "onnxruntime", "openvino"}, False, {"images": 63}, ("torch", "fp32")),
    ({"torch", "onnxruntime", "openvino"}, False, {"images": 64}, ("openvino", "fp32")),
    ({"torch", "onnxruntime", "openvino"}, True, {"images": 1, "backend": "openvino"}, ("openvino", "bf16")),
])
def test_the_default_cpu_path_is_the_fastest_installed_one(monkeypatch, installed, bf16, asked, expected) -> None:
    import resnets.deploy.backends.select as select

    monkeypatch.setattr(select, "available", lambda backend: backend in installed)
    monkeypatch.setattr(select, "cpu_has_bf16", lambda: bf16)
    assert select.fastest_cpu_path(**asked) == expected


def test_onnxruntime_int8_without_vnni_uses_7_bit_weights(monkeypatch) -> None:
    """As on an AVX2 CPU without VNNI: the model still matches within the int8 tolerance."""
    if not available("onnxruntime"):
        pytest.skip("onnxruntime is not installed")
    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert not cpu_features.has_int8_dot_products()
    model, side = build("cifar_option_B")
    fast = inference_model(model, device="cpu", backend="onnxruntime", precision="int8",
                           calibration=[images(16, side, seed=s) for s in range(4)], input_size=(3, side, side))
    assert fast.check_error is not None and fast.check_error <= TOLERANCES["int8"]
    import numpy as np
    import onnx
    from onnx import numpy_helper

    weights = [numpy_helper.to_array(t) for t in onnx.load(str(fast.model.path)).graph.initializer
               if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4]  # conv weights
    assert weights and max(int(np.abs(w.astype(np.int32)).max()) for w in weights) <= 64  # 7-bit range


@pytest.mark.parametrize(("cap", "bf16", "int8"), [("AVX2", False, False), ("avx2_vnni", False, True),
                                                  ("AVX512_CORE_VNNI", False, True),
                                                  ("AVX512_CORE_BF16", True, True), ("AVX10_1_512_AMX", True, True),
                                                  ("ALL", True, True), ("", True, True)])
def test_a_onednn_isa_cap_rules_out_the_instructions_above_it(monkeypatch, cap, bf16, int8) -> None:
    # oneDNN runs torch's and OpenVINO's CPU convolutions: capped below AVX512_CORE_BF16 it has no bf16
    monkeypatch.setattr(cpu_features, "cpu_flags",
                        lambda: frozenset({"avx2", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16"}))
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    assert cpu_features.cpu_has_bf16() is bf16
    assert cpu_features.has_int8_dot_products() is int8
