"""Face boxes made usable and cut out: clipped to the image, the largest kept, a margin added, eyes levelled."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from fer_age.config import CropConfig


def clip_face(face: Face, height: int, width: int, min_face: int) -> tuple[Face | None, str]:
    """``face`` with its box clipped to the image, or None and why it is unusable.

    A box must have a positive size, and at least ``min_face`` pixels on each side once clipped.
    """
    x, y, w, h = face.box
    if w <= 0 or h <= 0:
        return None, f"box {w}x{h} at ({x}, {y}) has no area"
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
    if x1 - x0 < min_face or y1 - y0 < min_face:
        inside = f"{max(x1 - x0, 0)}x{max(y1 - y0, 0)}"
        return None, f"box {w}x{h} at ({x}, {y}) is {inside} inside the image, below crop.min_face {min_face}"
    return replace(face, box=(x0, y0, x1 - x0, y1 - y0)), ""


def usable_faces(faces: list[Face], height: int, width: int, min_face: int) -> tuple[list[Face], str]:
    """Every usable face, clipped, best first (most confident, then largest), and why the others are not."""
    usable, reasons = [], []
    for face in sorted(faces, key=lambda f: (-round(f.confidence, 2), -f.area)):
        clipped, reason = clip_face(face, height, width, min_face)
        if clipped is None:
            reasons.append(reason)
        else:
            usable.append(clipped)
    return usable, "; ".join(reasons) or ("" if usable else "no face found")


def choose_face(faces: list[Face], height: int, width: int, min_face: int) -> tuple[Face | None, str]:
    """The best usable face (most confident, then largest) and, when there is none, why."""
    usable, reasons = usable_faces(faces, height, width, min_face)
    return (usable[0], "") if usable else (None, reasons)


def crop_face(image: np.ndarray, face: Face, margin: float, align: bool) -> np.ndarray:
    """Cut ``face`` out of ``image`` with ``margin`` (fraction of the box on each side).

    With ``align`` and known eyes, the image is first rotated about the face centre so that
    the eyes are level.
    """
    x, y, w, h = face.box
    cx, cy = x + w / 2, y + h / 2
    if align and face.left_eye and face.right_eye:
        (lx, ly), (rx, ry) = face.left_eye, face.right_eye
        angle = math.degrees(math.atan2(ry - ly, rx - lx))
        rotation = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
        image = cv2.warpAffine(image, rotation, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REPLICATE)
    half_w, half_h = w * (0.5 + margin), h * (0.5 + margin)
    x0, x1 = max(int(cx - half_w), 0), min(int(cx + half_w), image.shape[1])
    y0, y1 = max(int(cy - half_h), 0), min(int(cy + half_h), image.shape[0])
    return image[y0:y1, x0:x1]


def face_crop(image: np.ndarray, face: Face | None, cfg: CropConfig) -> np.ndarray:
    """The face (or, with no face, the whole image) with margin, alignment and the grayscale step."""
    if face is not None:
        image = crop_face(image, face, cfg.margin, cfg.align)
    if cfg.grayscale:  # as the original: grayscale, back to three channels
        image = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    return image


@dataclass(frozen=True)
class Face:
    """One detected face: box as x, y, width, height in pixels; eyes in (x, y) when known."""

    box: tuple[int, int, int, int]
    confidence: float
    left_eye: tuple[float, float] | None = None
    right_eye: tuple[float, float] | None = None

    @property
    def area(self) -> int:
        return self.box[2] * self.box[3]
