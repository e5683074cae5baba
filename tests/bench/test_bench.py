"""run_bench on the CPU: positive throughputs, ratio = ours / theirs, JSON round trip, CLI."""

from __future__ import annotations

import json
import re
import statistics

import pytest

from resnets import create_model
from resnets.bench import BenchConfig, format_text, load_json, run_bench, save_json
from resnets.bench.measure import ratios
from resnets.bench.memory import NOT_MEASURED_CPU
from resnets.cli import main
from resnets.cpu_features import cpu_has_bf16
from resnets.models.inspect import count_parameters


def test_both_workloads_have_positive_throughputs(result: dict) -> None:
    assert set(result["results"]) == {"train", "infer"}
    for workload in result["results"].values():
        for side in ("ours", "theirs"):
            s = workload[side]
            assert len(s["samples"]) == 2
            assert all(v > 0 for v in s["samples"])
            assert s["img_per_s"] == pytest.approx(statistics.median(s["samples"]))
            assert s["min"] <= s["img_per_s"] <= s["max"]


def test_ratio_is_ours_over_theirs() -> None:
    # ours twice as fast by the medians (200 vs 100 img/s), but per repetition 1x, 3x and 0.5x:
    # the ratio of medians and the median of the paired ratios differ, and swapping the sides
    # (theirs / ours) would give 0.5
    out = ratios([100.0, 300.0, 200.0], [100.0, 100.0, 400.0])
    assert out["ratio"] == pytest.approx(2.0)
    assert out["paired_ratio"] == pytest.approx(1.0)
    slower = ratios([50.0, 50.0], [100.0, 100.0])
    assert slower["ratio"] == pytest.approx(0.5) and slower["paired_ratio"] == pytest.approx(0.5)


def test_memory_is_measured_or_explained(result: dict) -> None:
    values = [w[side]["peak_memory_bytes"] for w in result["results"].values() for side in ("ours", "theirs")]
    if any(v is None for v in values):
        assert NOT_MEASURED_CPU in result["notes"]
        return
    # every side builds its network afresh (and training sides their gradients and momentum):
    # at least the weights of resnet20 are counted, whatever the allocator adds
    weights = 4 * count_parameters(create_model("resnet20"))
    for workload, w in result["results"].items():
        for side in ("ours", "theirs"):
            assert isinstance(w[side]["peak_memory_bytes"], int)
            assert w[side]["peak_memory_bytes"] >= weights, (workload, side)


def test_result_states_device_versions_and_twin(result: dict) -> None:
    import torch
    import torchvision

    env = result["env"]
    assert env["torch"] == torch.__version__ and env["torchvision"] == torchvision.__version__
    assert result["resolved"]["device"] == "cpu"
    assert result["resolved"]["cuda_graphs"] is False
    assert "ReferenceCifarResNet(depth=20)" in result["reference"]
    text = format_text(result)
    assert "ratio ours/theirs" in text and env["cpu_model"] in text


def test_json_round_trip(result: dict, tmp_path) -> None:
    path = save_json(result, tmp_path / "out" / "bench.json")
    assert load_json(path) == result
    assert format_text(load_json(path)) == format_text(result)


def test_load_json_rejects_other_files(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="resnets bench --json"):
        load_json(tmp_path / "missing.json")
    (tmp_path / "other.json").write_text(json.dumps({"a": 1}))
    with pytest.raises(ValueError, match="not a `resnets bench` result"):
        load_json(tmp_path / "other.json")


def test_engine_data_path_on_digits(tiny: dict) -> None:
    out = run_bench(BenchConfig(**{**tiny, "batch": 8}, data="digits", workloads=("train",), memory=False))
    assert set(out["results"]) == {"train"}
    assert "engine's loader for digits" in out["batches"]
    assert out["image_size"] == 8
    assert out["results"]["train"]["ours"]["img_per_s"] > 0


def test_cli_writes_json(tmp_path, capsys) -> None:
    path = tmp_path / "r.json"
    rc = main(["bench", "--model", "resnet20", "--device", "cpu", "--batch", "2", "--warmup", "1", "--reps", "1",
               "--steps", "1", "--threads", "1", "--workloads", "infer", "--no-memory", "--json", str(path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "ratio ours/theirs" in out and str(path) in out
    data = load_json(path)
    assert list(data["results"]) == ["infer"]
    assert data["results"]["infer"]["ours"]["peak_memory_bytes"] is None


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "resnet1001"], "no reference network"),
        (["--workloads", "train,predict"], "workloads"),
        (["--data", "imagefolder"], "imagefolder"),
        (["--graphs", "on", "--device", "cpu"], "CUDA"),
        (["--batch", "0"], "batch"),
    ],
)
def test_cli_errors_name_the_problem(argv: list[str], message: str, capsys) -> None:
    assert main(["bench", "--device", "cpu", "--reps", "1", "--steps", "1", "--warmup", "1", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "resnets bench: error:" in err


def test_the_header_and_each_workload_are_reported_as_they_are_measured(tiny: dict, monkeypatch) -> None:
    from resnets.bench.results import header_lines, workload_lines

    seen: list[tuple[str, list[str]]] = []  # (a report, the workloads measured when it came)
    measured: list[str] = []

    import resnets.bench.measure as measure

    real = measure._measure

    def recording(cfg, setup, twin, workload, notes, report):  # noqa: ANN001, ANN202 - records what was done when
        result = real(cfg, setup, twin, workload, notes, report)
        measured.append(workload)
        return result

    monkeypatch.setattr(measure, "_measure", recording)
    result = run_bench(BenchConfig(**tiny, memory=False), report=lambda text: seen.append((text, list(measured))))
    (header, before), (warm_train, _), (train, after_train), (warm_infer, _), (infer, after_infer) = seen
    assert before == [] and header.startswith("\n".join(header_lines(result)))  # before any measurement
    assert "measuring 2 workload(s) x 2 sides x 3 steps of batch 4" in header
    assert re.fullmatch(r"training: warmed up; the timed steps take about [0-9.e+-]+ s", warm_train)
    assert after_train == ["train"] and train.startswith("\n".join(workload_lines("train", result["results"]["train"])))
    assert train.endswith("s to go)")
    assert warm_infer.startswith("inference: warmed up")
    assert after_infer == ["train", "infer"] and infer == "\n".join(workload_lines("infer", result["results"]["infer"]))


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no native bf16 (AVX512-BF16 / AMX-BF16)")
def test_our_bf16_training_step_against_the_twins_fp32_loop(tiny: dict) -> None:
    out = run_bench(BenchConfig(**{**tiny, "precision": "bf16", "twin_precision": "fp32", "workloads": ("train",),
                                   "memory": False}))
    assert out["resolved"]["precision"] == "bf16 autocast" and out["resolved"]["twin_precision"] == "fp32"
    train = out["results"]["train"]
    assert "bfloat16" in train["ours"]["description"] and "bfloat16" not in train["theirs"]["description"]
    assert "fp32" in train["theirs"]["description"]
    assert "bf16 autocast (twin: fp32)" in format_text(out)
