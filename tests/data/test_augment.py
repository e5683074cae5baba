from __future__ import annotations

import torch

from resnets.data.augment import flip_mask, random_crop, random_flip, random_resized_crop, resize_center_crop
from resnets.data.pipeline import BatchPipeline


def _batch(b: int = 8, c: int = 3, h: int = 32, w: int = 32) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randint(1, 256, (b, c, h, w), dtype=torch.uint8)  # no zeros: padding is detectable


def test_crop_keeps_shape_and_content_from_image_or_zeros() -> None:
    x = _batch()
    out = random_crop(x, pad=4, gen=torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    for i in range(x.shape[0]):
        # the crop equals some shifted window of the zero-padded image
        padded = torch.nn.functional.pad(x[i], (4, 4, 4, 4))
        matches = [
            (dy, dx)
            for dy in range(9)
            for dx in range(9)
            if torch.equal(padded[:, dy : dy + 32, dx : dx + 32], out[i])
        ]
        assert len(matches) == 1
    assert (out == 0).any()  # some sample was shifted, exposing zeros


def test_flip_equals_torch_flip_where_mask_says() -> None:
    x = _batch(16)
    mask = flip_mask(16, gen=torch.Generator().manual_seed(3))
    out = random_flip(x, gen=torch.Generator().manual_seed(3))
    assert 0 < int(mask.sum()) < 16
    assert torch.equal(out[mask], torch.flip(x[mask], dims=[3]))
    assert torch.equal(out[~mask], x[~mask])


def test_random_resized_crop_full_area_is_identity_or_flip() -> None:
    x = _batch(4, h=16, w=16).float()
    gen = torch.Generator().manual_seed(0)
    out = random_resized_crop(x, size=16, gen=gen, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    for i in range(4):
        assert torch.allclose(out[i], x[i], atol=1e-3) or torch.allclose(out[i], x[i].flip(2), atol=1e-3)


def test_random_resized_crop_output_size_and_range() -> None:
    x = _batch(4, h=40, w=40)
    out = random_resized_crop(x, size=24, gen=torch.Generator().manual_seed(0))
    assert out.shape == (4, 3, 24, 24)
    assert out.min() >= 0 and out.max() <= 255


def test_resize_center_crop_shapes() -> None:
    x = _batch(2, h=64, w=64)
    assert resize_center_crop(x, size=56, crop_fraction=0.875).shape == (2, 3, 56, 56)
    same = resize_center_crop(x, size=64, crop_fraction=1.0)
    assert torch.equal(same, x.float())


def test_pipeline_seed_reproducible_and_normalises() -> None:
    x = _batch()
    p = BatchPipeline(augment="cifar", out_size=32, mean=(0.5,) * 3, std=(0.25,) * 3, max_value=255.0, device=torch.device("cpu"))
    a, b, c = p.train(x, seed=7), p.train(x, seed=7), p.train(x, seed=8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    e = p.eval(x)
    assert torch.allclose(e, (x.float() / 255 - 0.5) / 0.25, atol=1e-5)
