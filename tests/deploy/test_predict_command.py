import json

import numpy as np
import torch
from deploy_helpers import write_train_checkpoint
from PIL import Image

from resnets.cli import main
from resnets.data import preprocess


def test_predict_command_runs_the_folded_model(tmp_path, capsys, monkeypatch) -> None:
    """`resnets predict` goes through inference_model: same probabilities as the eval model."""
    import resnets.deploy

    built = []
    real = resnets.deploy.inference_model
    monkeypatch.setattr(resnets.deploy, "inference_model", lambda m, **kw: built.append(real(m, **kw)) or built[-1])
    run_dir, model = write_train_checkpoint(tmp_path / "run")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8), mode="L").save(path)
        paths.append(str(path))
    assert main(["predict", *paths, "--checkpoint", str(run_dir), "--topk", "3", "--json", "--backend", "torch",
                 "--precision", "fp32"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(built) == 1 and not any(isinstance(m, torch.nn.BatchNorm2d) for m in built[0].modules())
    x = torch.stack([preprocess(Image.open(p), image_size=16, in_chans=1, mean=(0.5,), std=(0.25,),
                                crop_fraction=1.0) for p in paths])  # (3, 1, 16, 16)
    with torch.no_grad():
        probs = model.eval()(x).softmax(1)
    classes = ["a", "b", "c"]
    for row, p in zip(result, probs):
        got = {t["label"]: t["prob"] for t in row["topk"]}
        assert got == {c: got[c] for c in classes}
        np.testing.assert_allclose([got[c] for c in classes], p.numpy(), atol=1e-5)


def test_predict_reports_and_skips_unreadable_images(tmp_path, capsys) -> None:
    """A corrupt or missing image is named on stderr and skipped; the others are still predicted."""
    run_dir, _ = write_train_checkpoint(tmp_path / "run")
    good = []
    for i in range(3):
        path = tmp_path / f"ok{i}.png"
        Image.fromarray(np.full((16, 16), 40 * i, dtype=np.uint8), mode="L").save(path)
        good.append(str(path))
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not an image")
    missing = tmp_path / "missing.png"
    args = [good[0], str(corrupt), good[1], str(missing), good[2]]
    code = main(["predict", *args, "--checkpoint", str(run_dir), "--topk", "2", "--batch-size", "2", "--json"])
    captured = capsys.readouterr()
    assert code == 1
    assert [row["image"] for row in json.loads(captured.out)] == good
    assert "corrupt.png" in captured.err and "missing.png" in captured.err
    assert len([line for line in captured.err.strip().splitlines() if "skipped" in line]) == 2


def test_predict_by_default_runs_the_fastest_installed_path_and_names_it(tmp_path, capsys) -> None:
    """On the CPU the default path is chosen among the installed backends; it says which, on stderr,
    and its probabilities stay within that precision's tolerance of the fp32 model."""
    from resnets.deploy.backends import TOLERANCES
    from resnets.deploy.backends.select import fastest_cpu_path

    run_dir, model = write_train_checkpoint(tmp_path / "run")
    path = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (16, 16), dtype=np.uint8), mode="L").save(path)
    assert main(["predict", str(path), "--checkpoint", str(run_dir), "--topk", "3", "--json"]) == 0
    captured = capsys.readouterr()
    backend, precision = fastest_cpu_path(images=1)
    assert f"ran {backend} {precision}" in captured.err
    got = {t["label"]: t["prob"] for t in json.loads(captured.out)[0]["topk"]}
    x = preprocess(Image.open(path), image_size=16, in_chans=1, mean=(0.5,), std=(0.25,), crop_fraction=1.0)
    with torch.no_grad():
        probs = model.eval()(x[None]).softmax(1)[0]
    np.testing.assert_allclose([got[c] for c in "abc"], probs.numpy(), atol=TOLERANCES[precision])


def test_predict_refuses_int8_without_a_calibrated_model(tmp_path, capsys) -> None:
    run_dir, _ = write_train_checkpoint(tmp_path / "run")
    assert main(["predict", "x.png", "--checkpoint", str(run_dir), "--precision", "int8"]) == 2
    assert "resnets quantize" in capsys.readouterr().err
