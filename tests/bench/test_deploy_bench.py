"""`resnets bench --suite deploy`: every installed backend and precision against torchvision eager fp32."""

import json

import pytest

from resnets.cli import main
from resnets.cpu_features import cpu_has_bf16
from resnets.deploy.backends import BACKENDS, available


@pytest.mark.slow
def test_deploy_suite_times_every_installed_path_and_writes_json(tmp_path, capsys) -> None:
    out = tmp_path / "deploy.json"
    code = main(["bench", "--suite", "deploy", "--model", "resnet18", "--batch", "2", "--image-size", "32",
                 "--threads", "1", "--warmup", "1", "--reps", "2", "--steps", "1", "--json", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    result = json.loads(out.read_text())
    results = result["results"]
    expected = {f"ours {b} {p}" for b, e in BACKENDS.items() if available(b) for p in e.precisions
                if p != "bf16" or cpu_has_bf16()}
    assert expected <= set(results) and "torchvision eager fp32" in results
    assert results["torchvision eager fp32"]["ratio"] == 1.0
    for name, r in results.items():
        assert r["median"] > 0 and r["latency_ms"] > 0 and r["ratio"] == pytest.approx(
            r["median"] / results["torchvision eager fp32"]["median"]), name
        assert name in text
    if available("openvino"):
        assert any(name.startswith("openvino default = ") for name in results)
    env = result["env"]
    assert env["torch_threads"] == 1 and env["versions"]["torch"] and env["cpu_model"] in text
    assert set(env["cpu_flags"]) <= {"avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
                                     "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8"}
