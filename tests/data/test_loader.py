from __future__ import annotations

import numpy as np
import torch

from resnets.data import DataConfig, load_data


def _cfg(**kw) -> DataConfig:
    base = dict(name="synthetic", synthetic_shape=(3, 8, 8), synthetic_size=200, batch_size=16, val_fraction=0.1)
    base.update(kw)
    return DataConfig(**base)


def test_resume_equals_tail_of_epoch() -> None:
    loader = load_data(_cfg(augment="cifar")).train
    full = list(loader.epoch(3))
    tail = list(loader.epoch(3, start=4))
    assert len(tail) == len(full) - 4
    for (xa, ya), (xb, yb) in zip(full[4:], tail):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_same_epoch_reproducible_and_epochs_differ() -> None:
    loader = load_data(_cfg(augment="cifar")).train
    a = torch.cat([x for x, _ in loader.epoch(1)])
    b = torch.cat([x for x, _ in loader.epoch(1)])
    c = torch.cat([x for x, _ in loader.epoch(2)])
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not np.array_equal(loader.indices(1), loader.indices(2))


def test_train_drops_last_partial_batch() -> None:
    loader = load_data(_cfg()).train
    sizes = [x.shape[0] for x, _ in loader.epoch(0)]
    assert len(sizes) == len(loader) == loader.num_samples // 16
    assert set(sizes) == {16}


def test_rank_shards_disjoint_and_cover() -> None:
    world = 3
    train = [load_data(_cfg(), rank=r, world_size=world).train for r in range(world)]
    idx = [t.indices(5) for t in train]
    union = np.concatenate(idx)
    assert len(set(union.tolist())) == len(union)  # disjoint
    n = train[0].images.shape[0]
    assert len(union) == (n // world) * world  # cover the epoch (tail trimmed to equal shards)
    assert all(t.num_samples == n // world for t in train)
    test = [load_data(_cfg(), rank=r, world_size=world).test for r in range(world)]
    tidx = np.concatenate([t.indices(0) for t in test])
    assert sorted(tidx.tolist()) == list(range(test[0].images.shape[0]))


def test_synthetic_deterministic_from_seed() -> None:
    a = load_data(_cfg(seed=1)).train.images
    b = load_data(_cfg(seed=1)).train.images
    c = load_data(_cfg(seed=2)).train.images
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_batches_on_device_and_typed() -> None:
    x, y = next(load_data(_cfg(synthetic_shape=(2, 5, 7))).train.epoch(0))
    assert x.shape == (16, 2, 5, 7) and x.dtype == torch.float32 and y.dtype == torch.int64


def test_not_resident_path_matches_resident() -> None:
    a = load_data(_cfg(augment="cifar", device_resident="yes")).train
    b = load_data(_cfg(augment="cifar", device_resident="no")).train
    for (xa, ya), (xb, yb) in zip(a.epoch(0), b.epoch(0)):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
