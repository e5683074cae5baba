import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from resnets.cli import main
from resnets.data import DataConfig, load_data
from resnets.deploy.predict import load_predictor, predict
from resnets.train import config_from_mapping


@pytest.mark.slow
def test_short_digits_run_beats_90_percent_and_leaves_a_complete_run_dir(digits_run):
    assert digits_run.test is not None and digits_run.test["acc"] >= 0.90
    d = digits_run.run_dir
    for name in ("config.yaml", "env.json", "metrics.jsonl", "final.json", "curves.png",
                 "last.safetensors", "last.state.pt", "best.safetensors"):
        assert (d / name).is_file(), name
    cfg = config_from_mapping(yaml.safe_load((d / "config.yaml").read_text()))
    assert cfg.model.name == "resnet20" and cfg.train.epochs == 4
    records = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1.0, 2.0, 3.0, 4.0]
    assert {"lr", "train_loss", "train_acc", "val_loss", "val_acc", "val_top5", "time"} <= set(records[0])
    final = json.loads((d / "final.json").read_text())
    assert final["weights"] == "best" and final["test"]["acc"] == pytest.approx(digits_run.test["acc"])
    assert final["best_val_acc"] == max(r["val_acc"] for r in records)
    assert "torch" in json.loads((d / "env.json").read_text())


def _write_test_pngs(tmp_path, count: int = 24):
    """The first digits test images as 8-bit PNGs, with their true labels."""
    bundle = load_data(DataConfig(name="digits", batch_size=64, eval_batch_size=count))
    x, y = next(iter(bundle.test.epoch(0)))  # (N, 1, 8, 8) normalised
    mean, std = torch.tensor(bundle.mean).view(1, -1, 1, 1), torch.tensor(bundle.std).view(1, -1, 1, 1)
    pixels = ((x * std + mean).clamp(0, 1) * 255).round().to(torch.uint8)[:, 0].numpy()
    paths = []
    for i, img in enumerate(pixels):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(np.ascontiguousarray(img), mode="L").save(path)
        paths.append(path)
    return paths, x, y.tolist()


@pytest.mark.slow
def test_predict_on_png_files_gives_the_checkpoints_labels(digits_run, tmp_path):
    paths, x, labels = _write_test_pngs(tmp_path)
    predictor = load_predictor(digits_run.run_dir)
    predictions = predict(predictor, paths, topk=3, batch_size=10)
    assert [p.path for p in predictions] == [str(p) for p in paths]
    top1 = [p.topk[0][0] for p in predictions]
    with torch.no_grad():
        direct = predictor.model(x).argmax(1).tolist()
    agree = sum(a == predictor.classes[b] for a, b in zip(top1, direct))
    assert agree >= len(paths) - 1  # the PNGs are 8-bit: at most a borderline image may flip
    assert sum(a == predictor.classes[b] for a, b in zip(top1, labels)) >= 0.85 * len(paths)
    for p in predictions:
        probs = [v for _, v in p.topk]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-6


@pytest.mark.slow
def test_eval_and_predict_commands(digits_run, tmp_path, capsys):
    assert main(["eval", str(digits_run.run_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["split"] == "test" and out["acc"] == pytest.approx(digits_run.test["acc"])
    assert main(["eval", str(digits_run.run_dir / "last.safetensors"), "--split", "val", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["split"] == "val"

    paths, _, _ = _write_test_pngs(tmp_path, count=3)
    assert main(["predict", *map(str, paths), "--checkpoint", str(digits_run.run_dir), "--topk", "2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in rows] == [str(p) for p in paths] and all(len(r["topk"]) == 2 for r in rows)

    # without --json, a line first says what is evaluated or predicted with what
    assert main(["eval", str(digits_run.run_dir), "--device", "cpu"]) == 0
    banner, result = capsys.readouterr().out.splitlines()
    best = digits_run.run_dir / "best.safetensors"
    best_step = json.loads((digits_run.run_dir / "final.json").read_text())["best_step"]
    assert banner == f"evaluating {best} (resnet20, step {best_step}) on digits test, device cpu ..."
    assert result.startswith(f"{best} on digits test (")
    assert main(["predict", *map(str, paths), "--checkpoint", str(digits_run.run_dir)]) == 0
    banner, *lines = capsys.readouterr().out.splitlines()
    params = sum(p.numel() for p in digits_run.model.parameters())
    assert banner == (f"predicting 3 image(s) with {digits_run.run_dir} ({params / 1e6:.2f} M parameters, 10 classes, "
                      "1x8x8 input) on cpu, batches of 64") and len(lines) == 3


def test_train_command_rejects_unknown_keys_with_a_suggestion(capsys, tmp_path):
    code = main(["train", "--config", "configs/demo.yaml", "optim.lrr=0.1", f"train.out_dir={tmp_path}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "optim.lrr" in err and "'optim.lr'" in err
    assert not list(tmp_path.iterdir())  # nothing was started
