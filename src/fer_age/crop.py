"""Crop stage: detect the face in every raw image and save the crops with a per-file report."""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from fer_age.config import CropConfig
from fer_age.datasets import RawItem, discover
from fer_age.detect import Detector, best_face, crop_face

USABLE = ("cropped", "no_face_kept_full")
REPORT_NAME = "crop_report.csv"


class NoUsableImagesError(RuntimeError):
    """A dataset produced no usable image at all."""


@dataclass
class CropRow:
    """One line of the crop report: what happened to one input file."""

    source: str
    emotion: str
    label: int | None
    status: str  # cropped | no_face_kept_full | no_face_skipped | unreadable | not_an_image | excluded_emotion
    detector: str = ""
    x: int | None = None
    y: int | None = None
    width: int | None = None
    height: int | None = None
    confidence: float | None = None
    output: str = ""
    message: str = ""


def load_image(path: Path) -> np.ndarray:
    """Read any supported image as RGB uint8, honouring EXIF rotation.

    Handles grayscale, palette, RGBA/LA (composited on white), CMYK and 16-bit images;
    raises ``OSError``/``ValueError`` for unreadable files.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if values.max() > 255 else 255.0
        image = Image.fromarray((values / top * 255).clip(0, 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    array = np.asarray(image.convert("RGB"))
    if array.size == 0:
        raise ValueError("image has no pixels")
    return array


def _downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    scale = max_side / max(image.shape[:2])
    if scale >= 1:
        return image, 1.0
    size = (max(int(image.shape[1] * scale), 1), max(int(image.shape[0] * scale), 1))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def _output_name(item: RawItem, root: Path, used: set[str]) -> str:
    inside_folder = Path(*item.path.relative_to(root).parts[1:])
    stem = "__".join(inside_folder.with_suffix("").parts)
    name = f"{stem}.png"
    if name in used:  # a.jpg and a.png in one folder
        name = f"{stem}_{item.path.suffix.lstrip('.').lower()}.png"
    used.add(name)
    return name


def crop_dataset(raw_dir: Path, out_dir: Path, name: str, labels: list[str],
                 cfg: CropConfig, detectors: list[Detector]) -> pd.DataFrame:
    """Crop every image of one dataset into ``out_dir``; return the report (one row per file)."""
    items = discover(raw_dir, name, labels)
    rows: list[CropRow] = []
    images = []
    for item in items:
        row = CropRow(str(item.path.relative_to(raw_dir)), item.emotion, item.label, "")
        if item.label is None:
            row.status, row.message = "excluded_emotion", f"emotion '{item.emotion}' is not in params labels"
        elif not item.is_image:
            row.status, row.message = "not_an_image", f"extension '{item.path.suffix}' is not an image type"
        else:
            images.append((item, row))
        rows.append(row)
    used: set[str] = set()
    batches = range(0, len(images), cfg.batch_size)
    for start in tqdm(batches, desc=f"crop {name}", unit="batch", disable=None):
        _crop_batch(images[start:start + cfg.batch_size], raw_dir, out_dir, name, cfg, detectors, used)
    return pd.DataFrame([asdict(r) for r in rows])


def _crop_batch(batch, raw_dir, out_dir, name, cfg, detectors, used) -> None:
    loaded = []
    for item, row in batch:
        try:
            loaded.append((item, row, load_image(item.path)))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError,
                Image.DecompressionBombWarning, UnidentifiedImageError) as err:
            row.status, row.message = "unreadable", f"{type(err).__name__}: {err}"[:300]
    pending = loaded
    for detector in detectors:
        if not pending:
            break
        small = [_downscale(image, cfg.max_side) for _, _, image in pending]
        found = detector.detect([s for s, _ in small])
        still = []
        for (item, row, image), (_, scale), faces in zip(pending, small, found):
            face = best_face(faces)
            if face is None:
                still.append((item, row, image))
                continue
            face = _rescale_face(face, 1 / scale)
            row.status, row.detector, row.confidence = "cropped", detector.name, face.confidence
            row.x, row.y, row.width, row.height = face.box
            _save(crop_face(image, face, cfg.margin, cfg.align), item, row, raw_dir, out_dir, name, cfg, used)
        pending = still
    for item, row, image in pending:
        if cfg.no_face == "keep_full":
            row.status = "no_face_kept_full"
            _save(image, item, row, raw_dir, out_dir, name, cfg, used)
        else:
            row.status = "no_face_skipped"
        row.message = f"no face found by {', '.join(d.name for d in detectors)}"


def _rescale_face(face, factor: float):
    def point(p):
        return None if p is None else (p[0] * factor, p[1] * factor)

    box = tuple(int(round(v * factor)) for v in face.box)
    return replace(face, box=box, left_eye=point(face.left_eye), right_eye=point(face.right_eye))


def _save(image, item, row, raw_dir, out_dir, name, cfg, used) -> None:
    if cfg.grayscale:  # as the original: grayscale, back to three channels
        image = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    folder = out_dir / f"{name}_{item.emotion}_cropped"
    folder.mkdir(parents=True, exist_ok=True)
    filename = _output_name(item, raw_dir, used)
    path = folder / filename
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    row.output = str(path.relative_to(out_dir))


def summarize(report: pd.DataFrame) -> str:
    """A one-line count of statuses, e.g. ``cropped=118, no_face_kept_full=2``."""
    counts = report["status"].value_counts()
    return ", ".join(f"{status}={n}" for status, n in counts.items())


def run_crop(raw_dir: Path, out_dir: Path, name: str, labels: list[str],
             cfg: CropConfig, detectors: list[Detector]) -> pd.DataFrame:
    """The crop stage: crop, write the report, fail if nothing is usable."""
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report = crop_dataset(raw_dir, out_dir, name, labels, cfg, detectors)
    seconds = time.perf_counter() - started
    report.to_csv(out_dir / REPORT_NAME, index=False)
    n_images = int(report["status"].isin(USABLE + ("no_face_skipped", "unreadable")).sum())
    print(f"crop {name}: {summarize(report)} ({n_images / max(seconds, 1e-9):.1f} img/s)")
    if not report["status"].isin(USABLE).any():
        raise NoUsableImagesError(
            f"dataset '{name}': no usable image in {raw_dir} ({summarize(report) or 'no files'}); "
            f"see {out_dir / REPORT_NAME}")
    return report
