"""Checkpoints that are truncated, of another network or class count, or pickles crafted to run
code: refused with a one-line message by `resnets eval`, `resnets predict`, `--resume` and
`finetune.source`, and the crafted pickles never run (their marker file never appears)."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from robust_helpers import tiny_recipe, write_recipe

from resnets.cli import main
from resnets.io.checkpoint import load_checkpoint, save_checkpoint
from resnets.models import create_model
from resnets.train import config_from_mapping, run

pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")  # the crafted pickles


class _RunsCode:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three finished tiny runs (ResNet-20 on 3 classes, ResNet-32 on 3, ResNet-20 on 5) and the
    bad files made from them."""
    base = tmp_path_factory.mktemp("bad-ckpt")
    out = base / "runs"
    paths: dict[str, Path] = {}
    for key, model, classes in (("a", "resnet20", 3), ("b", "resnet32", 3), ("c", "resnet20", 5)):
        recipe = tiny_recipe(out, model={"name": model}, data={"synthetic_classes": classes},
                             train={"iterations": 2, "name": f"run-{key}"})
        paths[f"recipe_{key}"] = write_recipe(base / f"{key}.yaml", recipe)
        paths[key] = run(config_from_mapping(recipe), device="cpu", quiet=True).run_dir
    marker = base / "code-ran"
    paths["marker"] = marker
    last = paths["a"] / "last.safetensors"
    ckpt = load_checkpoint(last)

    paths["truncated"] = base / "truncated.safetensors"
    paths["truncated"].write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    for key, model, classes in (("other_model", "resnet32", 3), ("other_classes", "resnet20", 5)):
        module = create_model(model, num_classes=classes, in_chans=1)
        paths[key] = save_checkpoint(base, key, module=module, metadata=ckpt.metadata)  # metadata lies
    with open(base / "evil.pth", "wb") as fh:
        pickle.dump({"state_dict": _RunsCode(marker)}, fh)
    paths["evil_pth"] = base / "evil.pth"
    torch.save({"conv1.weight": _RunsCode(marker)}, base / "evil_zip.pt")
    paths["evil_zip"] = base / "evil_zip.pt"
    paths["evil_safetensors"] = base / "evil.safetensors"
    shutil.copy(base / "evil.pth", paths["evil_safetensors"])

    paths["torn_resume"] = base / "truncated-run"  # a run directory whose last weights are cut short
    shutil.copytree(paths["a"], paths["torn_resume"])
    (paths["torn_resume"] / "last.safetensors").write_bytes(paths["truncated"].read_bytes())
    paths["evil_resume"] = base / "evil-run"  # a run directory whose training state runs code
    shutil.copytree(paths["a"], paths["evil_resume"])
    shutil.copy(paths["evil_zip"], paths["evil_resume"] / "last.state.pt")

    image = base / "digit.png"
    Image.fromarray(np.full((8, 8), 128, dtype=np.uint8)).save(image)
    paths["image"] = image
    return paths


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str], *words: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


UNREADABLE = ("truncated", "evil_pth", "evil_zip", "evil_safetensors")
MISFITS = ("other_model", "other_classes")


@pytest.mark.parametrize("case", UNREADABLE + MISFITS)
@pytest.mark.parametrize("command", ("eval", "predict"))
def test_eval_and_predict_refuse(runs: dict[str, Path], capsys: pytest.CaptureFixture[str], command: str,
                                 case: str) -> None:
    argv = (["eval", str(runs[case]), "--device", "cpu"] if command == "eval"
            else ["predict", str(runs["image"]), "--checkpoint", str(runs[case])])
    words = {"evil_pth": ("not a checkpoint written by", "PyTorch file", runs[case].name),
             "evil_zip": ("not a checkpoint written by", "PyTorch file", runs[case].name),
             "other_model": ("does not fit", "holds resnet20 with 3 classes, this model is another network"),
             "other_classes": ("does not fit", "holds resnet20 with 5 classes, this model has 3")}.get(
        case, ("cannot be read", runs[case].name))
    _refused(argv, capsys, *words)
    assert not runs["marker"].exists()


@pytest.mark.parametrize("case", ("torn_resume", "evil_resume", "b", "c"))
def test_resume_refuses(runs: dict[str, Path], capsys: pytest.CaptureFixture[str], case: str) -> None:
    before = {p.name: p.read_bytes() for p in runs[case].iterdir() if p.is_file()}
    words = {"torn_resume": ("cannot be read", "last.safetensors"), "evil_resume": ("cannot be read", "need code"),
             "b": ("cannot resume", "model.name (was 'resnet32')"),
             "c": ("cannot resume", "data.synthetic_classes (was 5)")}[case]
    _refused(["train", "--config", str(runs["recipe_a"]), "--resume", str(runs[case]), "--device", "cpu",
              "--quiet"], capsys, *words)
    assert not runs["marker"].exists()
    assert {p.name: p.read_bytes() for p in runs[case].iterdir() if p.is_file()} == before  # left as it was


@pytest.mark.parametrize("case", ("truncated", "evil_pth", "evil_zip", "evil_safetensors", "b"))
def test_finetune_source_refuses(runs: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                 case: str) -> None:
    words = ("do not match",) if case == "b" else (runs[case].name,)
    _refused(["train", "--config", str(runs["recipe_a"]), f"finetune.source={runs[case]}",
              f"train.out_dir={tmp_path}", "--device", "cpu", "--quiet"], capsys, *words)
    assert not runs["marker"].exists()
    assert not any(tmp_path.iterdir())  # refused before any run directory was made


def test_finetune_from_another_class_count_keeps_a_new_head(runs: dict[str, Path]) -> None:
    """By design, not refused: fine-tuning re-initialises the head for the new class count."""
    from resnets.train.finetune import load_finetune_source

    model = create_model("resnet20", num_classes=3, in_chans=1)
    head = model.fc.weight.detach().clone()
    load_finetune_source(model, runs["c"])
    source = load_checkpoint(runs["c"] / "best.safetensors", with_state=False).weights
    assert source["fc.weight"].shape[0] == 5 and torch.equal(model.fc.weight, head)
    assert torch.equal(model.conv1.weight, source["conv1.weight"])
