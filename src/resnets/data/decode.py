"""Decode image files into one uint8 array, in worker processes, with an on-disk cache.

Unreadable files are collected and reported once; the cache is keyed by a hash of the file
list (paths, sizes, modification times) and the decoded size, so any change re-decodes.
Building or reusing the cache is told through the ``resnets.data.decode`` logger (the command
line shows it on stderr): where the cache is and how big.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import multiprocessing
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from resnets.data.images import DECODE_ERRORS, open_image, resize_center_crop_pil, to_chw_uint8, to_mode
from resnets.data.paths import shown, user_cache_dir

log = logging.getLogger(__name__)

__all__ = ["DECODE_ERRORS", "decode_all", "decode_cached", "decode_image", "file_list_key"]


def decode_image(path: str | Path, *, size: int | None, in_chans: int = 3) -> np.ndarray | None:
    """One file -> (C, size, size) uint8 (native size when ``size`` is None), or None if unreadable."""
    try:
        image = to_mode(open_image(path), in_chans=in_chans)
    except DECODE_ERRORS:
        return None
    if size is not None:
        image = resize_center_crop_pil(image, size=size)
    return to_chw_uint8(image)


def _decode_chunk(paths: Sequence[str], size: int, in_chans: int) -> list[np.ndarray | None]:
    return [decode_image(p, size=size, in_chans=in_chans) for p in paths]


def decode_all(paths: Sequence[str], *, size: int, in_chans: int = 3, workers: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Decode every file to (C, size, size): returns images (N, C, size, size) uint8 and ok (N,) bool."""
    out = np.zeros((len(paths), in_chans, size, size), dtype=np.uint8)
    ok = np.zeros(len(paths), dtype=bool)
    names = [str(p) for p in paths]
    chunks = [names[i : i + 512] for i in range(0, len(names), 512)]
    fn = functools.partial(_decode_chunk, size=size, in_chans=in_chans)
    if workers > 0 and len(chunks) > 1:
        with multiprocessing.get_context("fork" if os.name == "posix" else "spawn").Pool(workers) as pool:
            results = pool.imap(fn, chunks)
            _fill(results, out, ok)
    else:
        _fill(map(fn, chunks), out, ok)
    return out, ok


def _fill(results, out: np.ndarray, ok: np.ndarray) -> None:
    i = 0
    for chunk in results:
        for image in chunk:
            if image is not None:
                out[i] = image
                ok[i] = True
            i += 1


def file_list_key(
    paths: Sequence[str], *, size: int, in_chans: int, stamps: Sequence[tuple[int, int]] | None = None
) -> str:
    """A hash of the file list (path, size, mtime) and the decode settings. Paths are hashed
    as the bytes the OS holds (``os.fsencode``): a name that is not UTF-8 is a name too."""
    if stamps is None:
        stamps = [(st.st_size, st.st_mtime_ns) for st in map(os.stat, paths)]
    digest = hashlib.sha256(f"v2|{size}|{in_chans}|".encode())
    digest.update(b"".join(os.fsencode(p) + f"|{n}|{t}\n".encode() for p, (n, t) in zip(paths, stamps)))
    return digest.hexdigest()[:24]


def decode_cached(
    paths: Sequence[str],
    *,
    size: int,
    in_chans: int = 3,
    workers: int = 0,
    use_cache: bool = True,
    stamps: Sequence[tuple[int, int]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`decode_all`, loading from / saving to ``<user cache>/folder-<hash>.{images,ok}.npy``."""
    if not use_cache:
        return decode_all(paths, size=size, in_chans=in_chans, workers=workers)
    key = file_list_key(paths, size=size, in_chans=in_chans, stamps=stamps)
    base = user_cache_dir() / f"folder-{key}"
    images_path, ok_path = base.with_suffix(".images.npy"), base.with_suffix(".ok.npy")
    if images_path.is_file() and ok_path.is_file():
        try:
            images, ok = np.load(images_path), np.load(ok_path)
            log.info("decode cache: reusing %s (%s, %d images of %d px)", shown(images_path),
                     _size_text(images_path.stat().st_size), len(paths), size)
            return images, ok
        except (OSError, ValueError):
            pass  # a damaged cache is rebuilt below
    log.info("decode cache: decoding %d images to %d px into %s (once; data.decode_cache=false skips the cache)",
             len(paths), size, shown(images_path))
    started = time.perf_counter()
    images, ok = decode_all(paths, size=size, in_chans=in_chans, workers=workers)
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
        for path, array in ((images_path, images), (ok_path, ok)):
            tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
            with open(tmp, "wb") as handle:
                np.save(handle, array)
            tmp.replace(path)
        log.info("decode cache: wrote %s (%s) in %.1f s", shown(images_path), _size_text(images_path.stat().st_size),
                 time.perf_counter() - started)
    except OSError:
        log.info("decode cache: %s cannot be written; the images are decoded again next time",
                 shown(images_path.parent))
    return images, ok


def _size_text(nbytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes / 1e3:.1f} kB"


def probe_size(paths: list[str]) -> tuple[int, int]:
    """(width, height) of the first readable image."""
    for path in paths[:1000]:
        try:
            with Image.open(path) as image:
                return image.size
        except DECODE_ERRORS:
            continue
    raise ValueError(f"none of the first {min(len(paths), 1000)} images under {shown(Path(paths[0]).parent.parent)} "
                     "can be read; check that the folder holds PNG/JPEG images")
