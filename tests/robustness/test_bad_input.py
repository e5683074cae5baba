"""Real-world bad input: each case ends with one line that names the file or key and the fix,
exit code 2 (1 where some inputs were processed and some skipped), nothing lost and nothing
half-written; or, where the input is fine after all (a name that is not UTF-8, a photo stored
rotated), it simply works."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from robust_helpers import PYTHON_PATHS, RunsCode, as_unprivileged, run_dirs, tiny_recipe, write_cifar10, write_recipe
from test_bad_images import _bomb_png

from resnets.cli import main
from resnets.data.decode import decode_image
from resnets.data.folder_loader import FileDataset
from resnets.data.images import open_image
from resnets.data.sources.base import FileSplit
from resnets.deploy.predict import _open
from resnets.studies.pool import portable_error
from resnets.train import config_from_mapping, run

pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")


def _one_line(argv: list[str], capsys: pytest.CaptureFixture[str], *words: str, code: int = 2) -> str:
    got = main(argv)
    err = capsys.readouterr().err.strip()
    assert got == code, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny run (ResNet-20, 3 classes of 8x8 grey images)."""
    out = tmp_path_factory.mktemp("good") / "runs"
    recipe = tiny_recipe(out, train={"iterations": 2, "checkpoint_every": 2})
    return run(config_from_mapping(recipe), device="cpu", quiet=True).run_dir


def _png(path: Path | str, value: int = 128, size: int = 8) -> None:
    Image.fromarray(np.full((size, size, 3), value, dtype=np.uint8)).save(path, format="PNG")


# --- file names that are not UTF-8 ------------------------------------------------------------

def test_a_folder_with_names_that_are_not_utf8_trains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "folder"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(6):
            name = os.fsdecode(os.fsencode(str(root / cls)) + b"/\xff\xfe" + f"{i}.png".encode())
            _png(name, value=20 * i + (120 if cls == "b" else 0))
    bad = os.fsdecode(os.fsencode(str(root / "a")) + b"/broken-\xff.png")
    Path(bad).write_text("not pixels")
    recipe = {"model": {"name": "resnet20"},
              "data": {"name": "imagefolder", "root": str(root), "batch_size": 4, "val_fraction": 0.25},
              "train": {"iterations": 2, "threads": 1, "tensorboard": False, "out_dir": str(tmp_path / "runs")}}
    config = write_recipe(tmp_path / "folder.yaml", recipe)  # default settings: decoded once, cached
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["train", "--config", str(config), "--device", "cpu", "--quiet"])
    out = capsys.readouterr()
    assert code == 0, out.err
    messages = [str(w.message) for w in caught]
    assert sum("broken-\\xff.png" in m for m in messages) == 1, messages  # shown escaped, once
    assert (run_dirs(tmp_path / "runs", "resnet20-imagefolder")[0] / "final.json").is_file()


# --- labels out of range ----------------------------------------------------------------------

def _train_on(tmp_path: Path, data: dict, capsys: pytest.CaptureFixture[str], *words: str) -> None:
    recipe = tiny_recipe(tmp_path / "runs", data=data)
    for key in ("synthetic_shape", "synthetic_classes", "synthetic_size"):
        recipe["data"].pop(key)
    config = write_recipe(tmp_path / "r.yaml", recipe)
    _one_line(["train", "--config", str(config), "--device", "cpu", "--quiet"], capsys, *words)
    assert not (tmp_path / "runs").exists()  # refused when the data was loaded: no run directory


def test_cifar_label_out_of_range_is_refused_at_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_cifar10(tmp_path / "cifar", labels=[0, 1, 2, 12, 4, 5, 6, 7])
    _train_on(tmp_path, {"name": "cifar10", "root": str(tmp_path / "cifar")}, capsys,
              str(folder / "data_batch_3"), "hold 12", "0..9", "sample 3")


def test_idx_label_out_of_range_is_refused_at_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import struct

    root = tmp_path / "mnist"
    root.mkdir()
    rng = np.random.default_rng(0)
    for stem, arr in (("train-images-idx3-ubyte", rng.integers(0, 256, (40, 28, 28))),
                      ("train-labels-idx1-ubyte", np.arange(40) % 10),
                      ("t10k-images-idx3-ubyte", rng.integers(0, 256, (10, 28, 28))),
                      ("t10k-labels-idx1-ubyte", np.r_[np.arange(9), 200])):  # the last test label: 200
        header = bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}i", *arr.shape)
        (root / stem).write_bytes(header + arr.astype(np.uint8).tobytes())
    _train_on(tmp_path, {"name": "mnist", "root": str(root)}, capsys,
              "t10k-labels-idx1-ubyte", "test labels hold 200")


# --- CIFAR batches that are not what they claim -----------------------------------------------

def test_crafted_cifar_pickle_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "code-ran"
    folder = write_cifar10(tmp_path / "cifar", test_batch=pickle.dumps({"data": RunsCode(marker)}))
    _train_on(tmp_path, {"name": "cifar10", "root": str(tmp_path / "cifar")}, capsys,
              str(folder / "test_batch"), "refused", "replace it")
    assert not marker.exists()


def test_cifar_batch_of_the_wrong_shape_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_cifar10(tmp_path / "cifar", data=np.zeros((8, 1000), dtype=np.uint8))
    _train_on(tmp_path, {"name": "cifar10", "root": str(tmp_path / "cifar")}, capsys,
              str(folder / "data_batch_3"), "(8, 1000)", "(N, 3072)")


# --- predict keeps going past unreadable images ----------------------------------------------

def test_predict_skips_a_decompression_bomb_and_predicts_the_rest(
    good_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = [tmp_path / "one.png", tmp_path / "two.png"]
    for i, path in enumerate(good):
        _png(path, value=60 * (i + 1))
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_bomb_png(100_000, 100_000))
    code = main(["predict", str(good[0]), str(bomb), str(good[1]), "--checkpoint", str(good_run), "--topk", "1"])
    out = capsys.readouterr()
    assert code == 1, out.err
    banner, *lines = out.out.splitlines()
    assert banner.startswith("predicting 3 image(s) with ")
    assert [line.split(":")[0] for line in lines] == [str(p) for p in good]
    problems = [line for line in out.err.splitlines() if not line.startswith("resnets predict: ran ")]
    assert len(problems) == 1 and "bomb.png" in out.err and "Traceback" not in out.err
    _one_line(["predict", str(bomb), "--checkpoint", str(good_run)], capsys, "bomb.png", "give PNG/JPEG files")


# --- recipes with a key given twice -----------------------------------------------------------

@pytest.mark.parametrize("text, line", [
    ("model:\n  name: resnet20\noptim:\n  lr: 0.1\n  momentum: 0.9\n  lr: 0.5\n", 6),
    ("model:\n  name: resnet20\ndata:\n  name: digits\nmodel:\n  name: resnet56\n", 5),
])
def test_duplicate_keys_are_refused_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int
) -> None:
    config = tmp_path / "twice.yaml"
    config.write_text(text)
    _one_line(["train", "--config", str(config), f"train.out_dir={tmp_path / 'runs'}"], capsys,
              f"{config}, line {line}", "given twice", "delete one")
    assert not (tmp_path / "runs").exists()


# --- EXIF orientation -------------------------------------------------------------------------

def _rotated_photo(path: Path) -> None:
    """A 32x16 (w x h) JPEG, left half black, right half white, tagged Orientation 6: upright,
    it is 16 wide and 32 tall with the black half on top."""
    pixels = np.zeros((16, 32, 3), dtype=np.uint8)
    pixels[:, 16:] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(path, format="JPEG", quality=95, exif=exif)


def _upright(chw: np.ndarray) -> None:
    assert chw.shape[1:] == (32, 16), chw.shape
    assert chw[:, :14].mean() < 40 and chw[:, 18:].mean() > 215


def test_exif_orientation_is_applied_wherever_images_are_decoded(tmp_path: Path) -> None:
    photo = tmp_path / "phone.jpg"
    _rotated_photo(photo)
    with Image.open(photo) as raw:
        assert raw.size == (32, 16)  # stored sideways
    to_chw = lambda im: np.asarray(im.convert("RGB")).transpose(2, 0, 1)  # noqa: E731
    _upright(to_chw(open_image(photo)))
    _upright(decode_image(photo, size=None))  # image folders decoded in memory
    _upright(to_chw(_open(str(photo))))  # predict
    dataset = FileDataset(FileSplit(paths=[str(photo)], labels=np.zeros(1, dtype=np.int64)),
                          lambda im: to_chw(im))  # image folders decoded per batch
    _upright(dataset[(0, -1)][0])


# --- read-only run directories, export --out DIR ----------------------------------------------

def _copy_tree(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    for path in [dst, *dst.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    return dst


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A temporary directory that any user can enter (pytest's are private to their owner)."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="resnets-ro-"))
    path.chmod(0o755)
    yield path
    for sub in [path, *path.rglob("*")]:
        sub.chmod(0o755 if sub.is_dir() else 0o644)
    shutil.rmtree(path)


@pytest.mark.parametrize("argv", [["train", "--resume", "{run}", "train.iterations=4", "--quiet", "--device", "cpu"],
                                  ["export", "{run}", "--format", "torchscript"]])
def test_read_only_run_directory_gets_one_line(good_run: Path, open_tmp: Path, argv: list[str]) -> None:
    prefix = as_unprivileged()
    if prefix is None:
        pytest.skip("running as root without setpriv: a read-only directory cannot be made")
    ro = _copy_tree(good_run, open_tmp / "ro")
    before = {p.name: p.read_bytes() for p in ro.iterdir()}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(PYTHON_PATHS)}
    cmd = [*prefix, sys.executable, "-m", "resnets", *[a.format(run=ro) for a in argv]]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=open_tmp, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert str(ro) in proc.stderr and ("not writable" in proc.stderr or "--out" in proc.stderr), proc.stderr
    assert {p.name: p.read_bytes() for p in ro.iterdir()} == before


def test_export_out_may_be_a_directory(good_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "exports"
    out.mkdir()
    assert main(["export", str(good_run), "--format", "torchscript", "--out", str(out)]) == 0, capsys.readouterr().err
    assert (out / "best.pt").is_file()


# --- misleading messages ----------------------------------------------------------------------

def test_torchvision_weights_and_onnx_files_are_named_for_what_they_are(
    good_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torchvision

    pth = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(num_classes=4).state_dict(), pth)
    onnx = tmp_path / "best.onnx"
    onnx.write_bytes(b"\x08\x07\x12\x07pytorch" + bytes(64))
    _png(tmp_path / "x.png")
    for argv in (["eval", str(pth)], ["predict", str(tmp_path / "x.png"), "--checkpoint", str(pth)]):
        _one_line(argv, capsys, str(pth), "PyTorch file", f"finetune.source={pth}")
    _one_line(["predict", str(tmp_path / "x.png"), "--checkpoint", str(onnx)], capsys, str(onnx), "ONNX export")


def test_resume_accepts_safe_overrides_and_names_the_others(
    good_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(good_run, run_dir)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    for key in ("model.name=resnet32", "optim.lr=0.5", "data.synthetic_classes=4"):
        _one_line(["train", "--resume", str(run_dir), key, "--device", "cpu"], capsys,
                  "cannot resume", key.split("=")[0])
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
    _one_line(["train", "--resume", str(tmp_path / "nonexistent")], capsys,
              str(tmp_path / "nonexistent"), "no such run directory")
    code = main(["train", "--resume", str(run_dir), "train.iterations=3", "train.log_every=1", "--device", "cpu",
                 "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert "trained resnet20 on synthetic: 3 steps" in capsys.readouterr().out


def test_unknown_top_level_key_lists_the_sections(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_recipe(tmp_path / "r.yaml", tiny_recipe(tmp_path / "runs"))
    _one_line(["train", "--config", str(config), "foo=1"], capsys, "'foo'", "model, data, optim, schedule, train")


def test_class_count_mismatch_names_both_counts_once(
    good_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from resnets.io.checkpoint import load_checkpoint, save_checkpoint
    from resnets.models import create_model

    meta = load_checkpoint(good_run / "best.safetensors", with_state=False).metadata
    other = save_checkpoint(tmp_path, "five", module=create_model("resnet20", num_classes=5, in_chans=1), metadata=meta)
    err = _one_line(["eval", str(other), "--device", "cpu"], capsys, "5 classes, this model has 3")
    assert err.count("3 classes") == 0


def test_finetuning_says_what_was_loaded_initialised_and_frozen(
    good_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = tiny_recipe(tmp_path / "runs", data={"synthetic_classes": 5}, train={"iterations": 1},
                         finetune={"source": str(good_run), "freeze_stages": 1})
    config = write_recipe(tmp_path / "ft.yaml", recipe)
    assert main(["train", "--config", str(config), "--device", "cpu", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"fine-tuning from {good_run}:" in out
    assert "newly initialised: fc.weight, fc.bias (the source has 3 classes)" in out
    assert "frozen: conv1, bn1, layer1\n" in out
    assert "loaded: " in out and "(conv1, bn1, layer1, layer2, layer3)" in out


# --- devices ----------------------------------------------------------------------------------

@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("command", ("train", "eval", "predict"))
def test_devices_that_are_missing_or_misspelled(
    good_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    _png(tmp_path / "x.png")
    base = {"train": ["train", "--config", str(good_run / "config.yaml"), f"train.out_dir={tmp_path / 'runs'}"],
            "eval": ["eval", str(good_run)],
            "predict": ["predict", str(tmp_path / "x.png"), "--checkpoint", str(good_run)]}[command]
    _one_line([*base, "--device", "cuda"], capsys, "CUDA is not available", "--device cpu")
    _one_line([*base, "--device", "gpu"], capsys, "'gpu'", "auto, cpu, cuda")
    assert not (tmp_path / "runs").exists()


# --- studies: an error in a worker process ----------------------------------------------------

def test_a_study_error_in_a_worker_is_the_same_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    errs = []
    for workers in ("1", "2"):
        out = tmp_path / f"study-{workers}"
        code = main(["study", "degradation", "--data", "cifar10", "--data-dir", str(tmp_path / "missing"),
                     "--depths", "8", "14", "--iterations", "2", "--milestones", "1", "--workers", workers,
                     "--out", str(out), "--quiet"])
        errs.append(capsys.readouterr().err)
        assert code == 2 and "Traceback" not in errs[-1] and "BrokenProcessPool" not in errs[-1], errs[-1]
        assert not out.exists()  # the empty study directory was removed
    assert errs[0] == errs[1] and "dataset 'cifar10' not found" in errs[0]


def test_errors_that_cannot_be_pickled_keep_their_message_and_kind() -> None:
    class Custom(ValueError):
        def __init__(self, a: str, b: str) -> None:
            super().__init__(f"{a} and {b}")

    back = pickle.loads(pickle.dumps(portable_error(Custom("x", "y"))))
    assert type(back) is ValueError and str(back) == "x and y"
    fine = FileNotFoundError("kept as it is")
    assert portable_error(fine) is fine


def test_resume_followed_by_an_override_reads_it_as_an_override(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_recipe(tmp_path / "r.yaml", tiny_recipe(tmp_path / "runs", train={"iterations": 2}))
    assert main(["train", "--config", str(config), "--device", "cpu", "--quiet"]) == 0
    capsys.readouterr()
    # `--resume` takes an optional path: here it swallows the override, which still applies
    code = main(["train", "--config", str(config), "--resume", "train.iterations=3", "--device", "cpu", "--quiet"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "3 steps" in out.out and len(run_dirs(tmp_path / "runs")) == 1
