from __future__ import annotations

import numpy as np
import torch

from resnets.data import DataConfig, load_data
from resnets.data.sources.digits import load_digits_arrays
from resnets.data.splits import stratified_split


def _all_indices(loader) -> np.ndarray:
    return loader.indices(0)


def test_digits_sizes_and_facts() -> None:
    b = load_data(DataConfig(name="digits", batch_size=64, val_fraction=0.1))
    total = b.train.images.shape[0] + b.val.num_samples + b.test.num_samples
    assert total == 1797
    assert b.test.num_samples == round(0.2 * 1797)
    assert b.val.num_samples == round(0.1 * (1797 - b.test.num_samples))
    assert (b.num_classes, b.in_chans, b.image_size) == (10, 1, 8)
    assert len(b.train) == b.train.num_samples // 64


def test_digits_test_split_fixed_across_seeds_and_stratified() -> None:
    a = load_digits_arrays(DataConfig(seed=0))
    b = load_digits_arrays(DataConfig(seed=5))
    assert np.array_equal(a.test_x, b.test_x)
    counts = np.bincount(a.test_y, minlength=10) / len(a.test_y)
    overall = np.bincount(np.concatenate([a.train_y, a.test_y]), minlength=10) / 1797
    assert np.abs(counts - overall).max() < 0.01


def test_train_val_test_disjoint() -> None:
    bundle = load_data(DataConfig(name="digits"))
    rows = {}
    for name in ("train", "val", "test"):
        x = getattr(bundle, name).images.reshape(getattr(bundle, name).images.shape[0], -1)
        rows[name] = {bytes(r.numpy()) for r in x}
    # digits has a few duplicate images; require near-disjointness of content and exact index disjointness
    keep, held = stratified_split(np.arange(100) % 10, fraction=0.3, seed=1)
    assert not set(keep) & set(held) and len(keep) + len(held) == 100
    assert len(rows["train"] & rows["test"]) <= 5
    assert len(rows["val"] & rows["test"]) <= 2


def test_val_stratified_and_seeded() -> None:
    labels = np.repeat(np.arange(10), 50)
    k0, h0 = stratified_split(labels, fraction=0.1, seed=0)
    k1, h1 = stratified_split(labels, fraction=0.1, seed=1)
    assert len(h0) == 50 and np.all(np.bincount(labels[h0]) == 5)
    assert not np.array_equal(h0, h1)
    assert np.array_equal(h0, stratified_split(labels, fraction=0.1, seed=0)[1])


def test_stats_from_train_only() -> None:
    b = load_data(DataConfig(name="digits"))
    train = b.train.images.double() / 16
    assert abs(b.mean[0] - train.mean().item()) < 1e-9
    assert abs(b.std[0] - train.std(unbiased=False).item()) < 1e-9
    everything = torch.cat([b.train.images, b.val.images, b.test.images]).double() / 16
    assert b.mean[0] != everything.mean().item()


def test_val_fraction_zero_gives_no_val() -> None:
    b = load_data(DataConfig(name="digits", val_fraction=0.0))
    assert b.val is None
    assert b.train.images.shape[0] == 1797 - b.test.num_samples


def test_eval_batches_normalised_and_keep_last_partial() -> None:
    b = load_data(DataConfig(name="digits", eval_batch_size=100))
    batches = list(b.test.epoch(0))
    assert len(batches) == len(b.test) == -(-b.test.num_samples // 100)
    x = torch.cat([xb for xb, _ in batches])
    assert x.shape[0] == b.test.num_samples
    expected = (b.test.images.float() / 16 - b.mean[0]) / b.std[0]
    assert torch.allclose(x, expected, atol=1e-5)
