"""Stratified hold-out splits, rank shards and seed mixing: pure functions of their inputs."""

from __future__ import annotations

import numpy as np


def mix_seed(*parts: int) -> int:
    """A well-spread 63-bit seed from a tuple of ints (e.g. (seed, epoch, batch, rank))."""
    state = np.random.SeedSequence([int(p) & 0xFFFFFFFFFFFFFFFF for p in parts]).generate_state(2)
    return int((int(state[0]) << 31) ^ int(state[1])) & 0x7FFFFFFFFFFFFFFF


def stratified_split(
    labels: np.ndarray, *, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (kept, held_out) with ``round(fraction * N)`` held out.

    Each class gives up the same share (largest-remainder rounding), chosen at random with
    ``seed``; both index arrays are sorted. Deterministic for a given (labels, fraction, seed).
    """
    labels = np.asarray(labels)
    n = len(labels)
    n_held = int(round(fraction * n))
    if n_held == 0:
        return np.arange(n), np.arange(0)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * (n_held / n)
    take = np.floor(exact).astype(np.int64)
    remainder = n_held - int(take.sum())
    order = np.argsort(-(exact - take), kind="stable")
    take[order[:remainder]] += 1
    rng = np.random.default_rng(mix_seed(seed, 0x5E11))
    held = [
        rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)
    ]
    held_idx = np.sort(np.concatenate(held)) if held else np.arange(0)
    mask = np.ones(n, dtype=bool)
    mask[held_idx] = False
    return np.flatnonzero(mask), held_idx


def rank_shard(indices: np.ndarray, *, rank: int, world_size: int, even: bool) -> np.ndarray:
    """This rank's disjoint part of ``indices`` (strided).

    ``even=True`` (training) first drops the tail so every rank gets the same count;
    ``even=False`` (evaluation) keeps every index, so the shards cover the split exactly.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank={rank} must be in [0, world_size={world_size})")
    if even:
        indices = indices[: (len(indices) // world_size) * world_size]
    return indices[rank::world_size]
