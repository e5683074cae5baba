"""Every command that reads a user file, against every file of a corpus of bad files.

A command is one row of COMMANDS (how to put a file in front of it); a file is one row of
CORPUS (how to write it). For every pair: the exit code is 0, 1 or 2, no traceback is printed,
the input files are unchanged, no crafted pickle ran (its marker file never appears), and no
run directory is left half-written (a command that fails leaves nothing; one that succeeds
leaves a finished run).
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from robust_helpers import RunsCode, tiny_recipe, write_recipe
from test_bad_images import _bomb_png

from resnets.cli import main
from resnets.io.checkpoint import load_checkpoint, save_checkpoint
from resnets.models import create_model
from resnets.train import config_from_mapping, run

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # skipped images, crafted pickles


@dataclass(frozen=True)
class Ctx:
    """What a command row needs besides the file: a finished run, a good image, a recipe, and
    the directories of this case (``out`` for whatever the command writes)."""

    good_run: Path
    good_image: Path
    marker: Path
    tmp: Path

    @property
    def out(self) -> Path:
        return self.tmp / "out"

    def recipe(self, **sections: dict) -> str:
        recipe = tiny_recipe(self.out, train={"iterations": 1, "eval_every": 1, "checkpoint_every": 1}, **sections)
        return str(write_recipe(self.tmp / "recipe.yaml", recipe))

    def folder_with(self, bad: Path) -> str:
        """An image folder (two classes of four good images) holding ``bad`` in class ``a``."""
        root = self.tmp / "folder"
        for cls in ("a", "b"):
            (root / cls).mkdir(parents=True)
            for i in range(4):
                shutil.copy(self.good_image, root / cls / f"{i}.png")
        shutil.copy(bad, os.path.join(root / "a", os.path.basename(bad)))
        recipe = tiny_recipe(self.out, train={"iterations": 1, "eval_every": 1, "name": "folder"},
                             data={"name": "imagefolder", "root": str(root), "batch_size": 4, "image_size": 8,
                                   "val_fraction": 0.25})
        for key in ("synthetic_shape", "synthetic_classes", "synthetic_size"):
            recipe["data"].pop(key)
        return str(write_recipe(self.tmp / "folder.yaml", recipe))


# A command that reads user files: (the corpus file, the context) -> its command line.
COMMANDS: dict[str, Callable[[Path, Ctx], list[str]]] = {
    "train-folder": lambda f, c: ["train", "--config", c.folder_with(f), "--device", "cpu", "--quiet"],
    "train-config": lambda f, c: ["train", "--config", str(f), f"train.out_dir={c.out}", "--device", "cpu", "--quiet"],
    "eval": lambda f, c: ["eval", str(f), "--device", "cpu"],
    "predict-image": lambda f, c: ["predict", str(f), str(c.good_image), "--checkpoint", str(c.good_run)],
    "predict-checkpoint": lambda f, c: ["predict", str(c.good_image), "--checkpoint", str(f)],
    "export": lambda f, c: ["export", str(f), "--format", "torchscript", "--out", str(c.out / "model.pt")],
    "finetune-source": lambda f, c: ["train", "--config", c.recipe(finetune={"source": str(f)}), "--device", "cpu",
                                     "--quiet"],
    "convert": lambda f, c: ["convert", str(f), str(c.out / "converted.safetensors")],
    "resume": lambda f, c: ["train", "--config", c.recipe(), "--resume", str(f), "--device", "cpu", "--quiet"],
}


def _jpeg(seed: int, size: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def _rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 16, 3), dtype=np.uint8)).save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def _torch_bytes(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


# A bad (or odd) file: its name -> (the good run's last weights, the marker) -> its bytes.
CORPUS: dict[str, Callable[[Path, Path], bytes]] = {
    "empty.safetensors": lambda last, m: b"",
    "truncated.safetensors": lambda last, m: last.read_bytes()[: last.stat().st_size // 2],
    "other-classes.safetensors": lambda last, m: _misfit(last),
    "crafted.pth": lambda last, m: pickle.dumps({"state_dict": RunsCode(m)}),
    "crafted-zip.pt": lambda last, m: _torch_bytes({"conv1.weight": RunsCode(m)}),
    "crafted.safetensors": lambda last, m: pickle.dumps({"state_dict": RunsCode(m)}),
    "data_batch_1": lambda last, m: pickle.dumps({"data": RunsCode(m), "labels": [0]}),
    "torchvision.pth": lambda last, m: _torch_bytes(create_model("resnet18", num_classes=3).state_dict()),
    "best.onnx": lambda last, m: b"\x08\x07\x12\x07pytorch" + bytes(32),
    "text.jpg": lambda last, m: b"these are not pixels\n",
    "truncated.jpg": lambda last, m: _jpeg(1)[:200],
    "bomb.png": lambda last, m: _bomb_png(100_000, 100_000),
    "rotated.jpg": lambda last, m: _rotated_jpeg(),
    "\udcff-not-utf8.jpg": lambda last, m: _jpeg(2),
    "twice.yaml": lambda last, m: b"model:\n  name: resnet20\nmodel:\n  name: resnet56\n",
    "binary.yaml": lambda last, m: bytes(range(256)),
}


def _misfit(last: Path) -> bytes:
    """A checkpoint of 5 classes whose metadata claims the good run's 3."""
    meta = load_checkpoint(last, with_state=False).metadata
    tmp = last.parent.parent / "misfit"
    tmp.mkdir(exist_ok=True)
    path = save_checkpoint(tmp, "misfit", module=create_model("resnet20", num_classes=5, in_chans=1), metadata=meta)
    return path.read_bytes()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(a finished tiny run, a good 8x8 image, the corpus folder)."""
    root = tmp_path_factory.mktemp("corpus")
    good_run = run(config_from_mapping(tiny_recipe(root / "runs", train={"iterations": 2})), device="cpu",
                   quiet=True).run_dir
    image = root / "good.png"
    Image.fromarray(np.full((8, 8, 3), 90, dtype=np.uint8)).save(image)
    corpus = root / "files"
    corpus.mkdir()
    for name, make in CORPUS.items():
        Path(os.fsdecode(os.path.join(os.fsencode(corpus), os.fsencode(name)))).write_bytes(
            make(good_run / "last.safetensors", root / "code-ran"))
    return good_run, image, corpus


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", list(CORPUS))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_on_every_bad_file(
    base: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, name: str
) -> None:
    good_run, image, corpus = base
    inputs = tmp_path / "in"
    inputs.mkdir()
    bad = inputs / name
    shutil.copy(corpus / name, bad)
    marker = corpus.parent / "code-ran"
    ctx = Ctx(good_run=good_run, good_image=image, marker=marker, tmp=tmp_path)
    argv = COMMANDS[command](bad, ctx)
    before = (_snapshot(inputs), _snapshot(good_run))
    code = main(argv)
    out = capsys.readouterr()
    assert code in (0, 1, 2), (code, out.err)
    assert "Traceback" not in out.out + out.err, out.err
    assert (_snapshot(inputs), _snapshot(good_run)) == before  # the inputs are unchanged
    assert not marker.exists()  # no crafted pickle ran
    if code == 2:
        assert not ctx.out.exists() or not any(ctx.out.iterdir()), list(ctx.out.rglob("*"))  # nothing written
    for run_dir in (p for p in ctx.out.glob("*") if p.is_dir()):
        assert (run_dir / "final.json").is_file(), list(run_dir.iterdir())  # a finished run, never half of one
