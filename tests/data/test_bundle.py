from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from resnets.data import DataConfig, load_data, preprocess
from resnets.data.bundle import storage_device


def test_preprocess_matches_eval_loader(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        for i in range(4):
            (tmp_path / cls).mkdir(exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    b = load_data(DataConfig(name="imagefolder", root=str(tmp_path), batch_size=2, val_fraction=0.25))
    x, _ = next(b.val.epoch(0))
    first = b.val.images[0].permute(1, 2, 0).numpy()  # (H, W, C) uint8
    single = b.preprocess(Image.fromarray(first))
    assert single.shape == (3, 10, 10)
    assert torch.allclose(single, x[0], atol=1e-5)
    same = preprocess(Image.fromarray(first), image_size=10, in_chans=3, mean=b.mean, std=b.std)
    assert torch.equal(same, single)


def test_preprocess_grey_and_resize() -> None:
    image = Image.new("RGB", (40, 20), (255, 255, 255))
    out = preprocess(image, image_size=8, in_chans=1, mean=(0.5,), std=(0.5,))
    assert out.shape == (1, 8, 8) and torch.allclose(out, torch.ones_like(out))
    with pytest.raises(ValueError, match="mean/std"):
        preprocess(image, image_size=8, in_chans=3, mean=(0.5,), std=(0.5,))


def test_residency_decision() -> None:
    gpu = torch.device("cuda")
    assert storage_device("auto", nbytes=10**6, device=gpu) == gpu
    assert storage_device("auto", nbytes=3 * 1024**3, device=gpu) == torch.device("cpu")
    assert storage_device("yes", nbytes=3 * 1024**3, device=gpu) == gpu
    assert storage_device("no", nbytes=10, device=gpu) == torch.device("cpu")


def test_image_size_resizes_once_and_imagenet_crops() -> None:
    cfg = DataConfig(name="synthetic", synthetic_shape=(3, 16, 16), synthetic_size=64, batch_size=8)
    b = load_data(DataConfig(**{**cfg.__dict__, "image_size": 8}))
    assert b.train.images.shape[-2:] == (8, 8) and next(b.train.epoch(0))[0].shape == (8, 3, 8, 8)
    b = load_data(DataConfig(**{**cfg.__dict__, "augment": "imagenet", "image_size": 12}))
    assert b.crop_fraction == 0.875 and b.image_size == 12
    assert next(b.train.epoch(0))[0].shape == (8, 3, 12, 12)
    assert next(b.test.epoch(0))[0].shape[-2:] == (12, 12)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batches_match_cpu_batches() -> None:
    cfg = DataConfig(name="synthetic", synthetic_shape=(3, 32, 32), synthetic_size=256, batch_size=32, augment="cifar")
    cpu = load_data(cfg).train
    gpu = load_data(cfg, device=torch.device("cuda")).train
    assert gpu.images.is_cuda
    for (xc, yc), (xg, yg) in zip(cpu.epoch(1, start=2), gpu.epoch(1, start=2)):
        assert xg.is_cuda and yg.is_cuda
        assert torch.equal(yc, yg.cpu()) and torch.allclose(xc, xg.cpu(), atol=1e-5)
