"""PIL image helpers: opening (EXIF orientation applied), mode conversion (16-bit, palette,
alpha) and the square resize-crop."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps

# What decoding a bad file raises (truncated, not an image, a decompression bomb, unreadable).
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def open_image(path: str | os.PathLike[str]) -> Image.Image:
    """Decode a whole image file, upright: the EXIF Orientation tag (a phone photo stored
    rotated) is applied. Raises one of :data:`DECODE_ERRORS` for an unreadable file."""
    with Image.open(path) as image:
        image.load()
        upright = ImageOps.exif_transpose(image)
        return upright if upright is not image else image.copy()

_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def to_mode(image: Image.Image, *, in_chans: int) -> Image.Image:
    """Convert any PIL image to 8-bit "RGB" (3 channels) or "L" (1 channel).

    16-bit and 32-bit grey images are scaled to 8 bits (not clipped); palette images with
    transparency go through RGBA; the alpha channel is dropped.
    """
    if in_chans not in (1, 3):
        raise ValueError(f"in_chans={in_chans}: images can be read as 1 (grey) or 3 (RGB) channels")
    if image.mode in _SIXTEEN_BIT:
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        if image.mode == "F":
            top = max(float(values.max()), 1.0)
        grey = np.clip(np.round(values * (255.0 / top)), 0, 255).astype(np.uint8)
        image = Image.fromarray(grey, mode="L")
    elif image.mode == "P":
        image = image.convert("RGBA")
    target = "RGB" if in_chans == 3 else "L"
    return image if image.mode == target else image.convert(target)


def resize_center_crop_pil(image: Image.Image, *, size: int, crop_fraction: float = 1.0) -> Image.Image:
    """Resize the shorter side to ``size / crop_fraction`` and take the centre ``size`` square."""
    short = int(round(size / crop_fraction))
    w, h = image.size
    if min(w, h) != short:
        scale = short / min(w, h)
        image = image.resize(
            (max(short, round(w * scale)), max(short, round(h * scale))), Image.BILINEAR
        )
        w, h = image.size
    if (w, h) == (size, size):
        return image
    left, top = (w - size) // 2, (h - size) // 2
    return image.crop((left, top, left + size, top + size))


def to_chw_uint8(image: Image.Image) -> np.ndarray:
    """PIL "L" or "RGB" image -> (C, H, W) uint8 array."""
    arr = np.array(image, dtype=np.uint8)  # a writable copy
    return arr[None] if arr.ndim == 2 else np.ascontiguousarray(arr.transpose(2, 0, 1))
