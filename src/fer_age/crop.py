"""Crop stage: detect the face in every raw image and save the crops, with one report row per entry."""

from __future__ import annotations

import argparse
import hashlib
import time
import warnings
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import pandas as pd
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from fer_age.config import Config, CropConfig
from fer_age.datasets import RawItem, check_labels, discover
from fer_age.detect import Detector, Face, choose_face, crop_face, make_detector
from fer_age.errors import FerAgeError
from fer_age.layout import CROP_REPORT, CROPPED, RAW, REPORT_COLUMNS, USABLE, Status, fresh_dir

PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 3]  # fixed encoding: identical bytes for identical pixels
LOAD_CHUNK = 8  # batches of images loaded at once


class NoUsableImagesError(FerAgeError, RuntimeError):
    """A dataset produced no usable image at all."""


class ImageTooLargeError(ValueError):
    """An image has more pixels than ``crop.max_pixels`` allows."""


@dataclass
class CropRow:
    """One line of the crop report: what happened to one entry of the raw folder."""

    source: str
    emotion: str = ""
    label: int | None = None
    subject: str = ""
    age_group: str = ""
    status: str = ""
    detector: str = ""
    x: int | None = None
    y: int | None = None
    width: int | None = None
    height: int | None = None
    confidence: float | None = None
    output: str = ""
    message: str = ""

    @classmethod
    def of(cls, item: RawItem) -> CropRow:
        return cls(item.source, item.emotion, item.label, item.subject, item.age_group, item.status,
                   message=item.message)


def load_image(path: Path, max_pixels: int = 200_000_000) -> np.ndarray:
    """Read any supported image as RGB uint8, honouring EXIF rotation.

    Handles grayscale, palette, RGBA/LA (composited on white), CMYK and 16-bit images;
    raises ``OSError``/``ValueError`` for unreadable files and images above ``max_pixels``.
    """
    with Image.open(path) as opened:
        if opened.width * opened.height > max_pixels:
            raise ImageTooLargeError(f"{opened.width}x{opened.height} = {opened.width * opened.height:,} pixels is "
                                     f"above crop.max_pixels {max_pixels:,} (decompression-bomb guard)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies
            limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                opened.load()
            finally:
                Image.MAX_IMAGE_PIXELS = limit
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


def output_names(items: list[RawItem], dataset: str) -> dict[str, str]:
    """The output path of every candidate image, unique and independent of processing order.

    ``<DS>_<Emotion>_cropped/<stem>.png``; stems that collide in one folder (``a.jpg`` and ``a.JPG``,
    or one file name in two sub-folders) all get a short hash of their source path.
    """
    planned = {i.source: (f"{dataset}_{i.emotion}_cropped", PurePosixPath(i.source).stem) for i in items}
    counts = defaultdict(int)
    for folder, stem in planned.values():
        counts[folder, stem.lower()] += 1
    names = {}
    for source, (folder, stem) in planned.items():
        if counts[folder, stem.lower()] > 1:
            stem = f"{stem}_{hashlib.sha1(source.encode()).hexdigest()[:8]}"
        names[source] = f"{folder}/{stem}.png"
    return names


def _downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    scale = max_side / max(image.shape[:2])
    if scale >= 1:
        return image, 1.0
    size = (max(int(image.shape[1] * scale), 1), max(int(image.shape[0] * scale), 1))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def _rescale(face: Face, factor: float) -> Face:
    if factor == 1.0:
        return face

    def point(p):
        return None if p is None else (p[0] * factor, p[1] * factor)

    box = tuple(int(round(v * factor)) for v in face.box)
    return Face(box, face.confidence, point(face.left_eye), point(face.right_eye))


def _read(item: RawItem, row: CropRow, cfg: CropConfig) -> np.ndarray | None:
    """The image of ``item``, or None with the row's status saying why not."""
    try:
        image = load_image(item.path, cfg.max_pixels)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, UnidentifiedImageError) as err:
        row.status, row.message = Status.UNREADABLE, f"{type(err).__name__}: {err}"[:300]
        return None
    height, width = image.shape[:2]
    if min(height, width) < cfg.min_face:
        row.status = Status.TOO_SMALL
        row.message = f"{width}x{height} px: a side is below crop.min_face {cfg.min_face}"
        return None
    return image


def _detect(images: list[np.ndarray], detectors: list[Detector], cfg: CropConfig) -> list[tuple[Face | None, str, str]]:
    """Per image: the usable face, the detector that found it, and why the others' detections were rejected."""
    results: list[tuple[Face | None, str, str]] = [(None, "", "")] * len(images)
    reasons: list[list[str]] = [[] for _ in images]
    pending = list(range(len(images)))
    for detector in detectors:
        if not pending:
            break
        small = [_downscale(images[i], cfg.max_side) for i in pending]
        found = detector.detect([s for s, _ in small])
        still = []
        for i, (_, scale), faces in zip(pending, small, found):
            height, width = images[i].shape[:2]
            face, reason = choose_face([_rescale(f, 1 / scale) for f in faces], height, width, cfg.min_face)
            if face is None:
                reasons[i].append(f"{detector.name}: {reason}")
                still.append(i)
            else:
                results[i] = (face, detector.name, "; ".join(reasons[i]))
        pending = still
    for i in pending:
        results[i] = (None, "", "; ".join(reasons[i]))
    return results


def _save(image: np.ndarray, path: Path, grayscale: bool) -> None:
    if grayscale:  # as the original: grayscale, back to three channels
        image = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), PNG_PARAMS):
        raise OSError(f"could not write {path}")


def crop_images(items: list[RawItem], rows: dict[str, CropRow], names: dict[str, str], out_dir: Path,
                cfg: CropConfig, detectors: list[Detector]) -> None:
    """Read, detect, crop and save ``items`` (candidate images), filling in their report rows."""
    loaded = [(item, image) for item in items if (image := _read(item, rows[item.source], cfg)) is not None]
    found = _detect([image for _, image in loaded], detectors, cfg)
    for (item, image), (face, detector, rejected) in zip(loaded, found):
        row = rows[item.source]
        if face is not None:
            row.status, row.detector, row.confidence = Status.CROPPED, detector, face.confidence
            row.x, row.y, row.width, row.height = face.box
            row.message = f"rejected first: {rejected}" if rejected else ""
            image = crop_face(image, face, cfg.margin, cfg.align)
        else:
            row.status = Status.NO_FACE_KEPT_FULL if cfg.no_face == "keep_full" else Status.NO_FACE_SKIPPED
            row.message = f"no usable face ({rejected})"
            if cfg.no_face != "keep_full":
                continue
        row.output = names[item.source]
        _save(image, out_dir / row.output, cfg.grayscale)


def crop_dataset(items: list[RawItem], out_dir: Path, dataset: str, cfg: CropConfig,
                 detectors: list[Detector]) -> pd.DataFrame:
    """Crop every candidate of ``items`` into ``out_dir``; return the report (one row per item)."""
    rows = {item.source: CropRow.of(item) for item in items}
    candidates = [item for item in items if not item.status]
    names = output_names(candidates, dataset)
    chunk = cfg.batch_size * LOAD_CHUNK
    with tqdm(total=len(candidates), desc=f"crop {dataset}", unit="img", disable=None) as progress:
        for start in range(0, len(candidates), chunk):
            crop_images(candidates[start:start + chunk], rows, names, out_dir, cfg, detectors)
            progress.update(len(candidates[start:start + chunk]))
    return pd.DataFrame([asdict(r) for r in rows.values()], columns=REPORT_COLUMNS).astype(
        {"label": "Int64", "x": "Int64", "y": "Int64", "width": "Int64", "height": "Int64"})


def summarize(report: pd.DataFrame) -> str:
    """A one-line count of statuses, e.g. ``cropped=118, no_face_kept_full=2``."""
    counts = report["status"].value_counts()
    return ", ".join(f"{status}={n}" for status, n in counts.items())


def write_report(report: pd.DataFrame, out_dir: Path, dataset: str, seconds: float) -> None:
    """Write the report and fail when nothing is usable."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report.to_csv(out_dir / CROP_REPORT, index=False)
    tried = int(report["status"].isin(USABLE + (Status.NO_FACE_SKIPPED,)).sum())
    print(f"crop {dataset}: {summarize(report)} ({tried / max(seconds, 1e-9):.1f} img/s)")
    if not report["status"].isin(USABLE).any():
        raise NoUsableImagesError(f"dataset '{dataset}': no usable image ({summarize(report) or 'no files'}); "
                                  f"see {out_dir / CROP_REPORT}")


def main(config: Config, args: argparse.Namespace) -> None:
    """``fer-age crop DATASET``: validate the labels against the raw folder, then crop."""
    ds = config.dataset(args.dataset)
    items = discover(RAW / ds.raw, args.dataset, ds, config.labels)
    check_labels(items, config.labels, args.dataset)  # before any work
    detectors = [make_detector(d, config.crop) for d in config.crop.detectors]
    out_dir = fresh_dir(CROPPED, args.dataset)
    started = time.perf_counter()
    report = crop_dataset(items, out_dir, args.dataset, config.crop, detectors)
    write_report(report, out_dir, args.dataset, time.perf_counter() - started)
