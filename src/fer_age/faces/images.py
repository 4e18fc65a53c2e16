"""Reading images of any format Pillow reads as RGB uint8, with the crop stage's limits, and squaring crops."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fer_age.config import CropConfig
from fer_age.contracts import Status


class ImageTooLargeError(ValueError):
    """An image has more pixels than ``crop.max_pixels`` allows."""


def load_image(path: Path | BinaryIO, max_pixels: int = 200_000_000) -> np.ndarray:
    """Read any supported image as RGB uint8, honouring EXIF rotation.

    Handles grayscale, palette, RGBA/LA (composited on white), CMYK and 16-bit images;
    raises ``OSError``/``ValueError`` for unreadable files and images above ``max_pixels``.
    """
    # crop.max_pixels is the guard: Pillow's own (about 179 Mpx) is off, the size is checked from the header
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                if opened.width * opened.height > max_pixels:
                    raise ImageTooLargeError(
                        f"{opened.width}x{opened.height} = {opened.width * opened.height:,} "
                        f"pixels is above crop.max_pixels {max_pixels:,} (decompression-bomb "
                        "guard)"
                    )
                opened.load()
                image = ImageOps.exif_transpose(opened)
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.nan_to_num(np.asarray(image, dtype=np.float64))
        top = 65535.0 if values.max() > 255 else 255.0 if values.max() > 1 else 1.0  # 16-bit, 8-bit or [0, 1]
        image = Image.fromarray((values / top * 255).clip(0, 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    array = np.asarray(image.convert("RGB"))
    if array.size == 0:
        raise ValueError("image has no pixels")
    return array


def read_image(path: Path | BinaryIO, cfg: CropConfig) -> tuple[np.ndarray | None, tuple[str, str]]:
    """The image at ``path``, or None with the (status, message) saying why it cannot be used."""
    try:
        image = load_image(path, cfg.max_pixels)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, UnidentifiedImageError) as err:
        return None, (Status.UNREADABLE, f"{type(err).__name__}: {err}"[:300])
    problem = size_problem(image, cfg)
    return (None, problem) if problem else (image, ("", ""))


def size_problem(image: np.ndarray, cfg: CropConfig) -> tuple[str, str] | None:
    """(status, message) for an image with a side below ``crop.min_face``, else None."""
    height, width = image.shape[:2]
    if min(height, width) < cfg.min_face:
        return Status.TOO_SMALL, f"{width}x{height} px: a side is below crop.min_face {cfg.min_face}"
    return None


def square(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` resized to ``size`` x ``size`` (area interpolation), as the models take it."""
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
