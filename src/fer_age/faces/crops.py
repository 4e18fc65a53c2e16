"""Cropping a dataset: every raw item read, its face detected and cut out, the crop saved, one report row each."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from fer_age.config import CropConfig
from fer_age.contracts import (
    CROP_REPORT,
    REPORT_COLUMNS,
    USABLE,
    Status,
)
from fer_age.errors import FerAgeError
from fer_age.faces.cropping import Face, face_crop
from fer_age.faces.detection import Detector, find_faces
from fer_age.faces.entries import RawItem
from fer_age.faces.images import read_image

PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 3]  # fixed encoding: identical bytes for identical pixels


LOAD_CHUNK = 8  # batches of images loaded at once


class NoUsableImagesError(FerAgeError, RuntimeError):
    """A dataset produced no usable image at all."""


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
        return cls(
            item.source, item.emotion, item.label, item.subject, item.age_group, item.status, message=item.message
        )


def output_names(items: list[RawItem], dataset: str) -> dict[str, str]:
    """The output path of every candidate image, unique and independent of processing order.

    ``<DS>_<Emotion>_cropped/<stem>.png``; stems that collide in one folder (``a.jpg`` and ``a.JPG``,
    or one file name in two sub-folders) all get a short hash of their source path.
    """
    planned = {i.source: (f"{dataset}_{i.emotion}_cropped", PurePosixPath(i.source).stem) for i in items}
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for folder, stem in planned.values():
        counts[folder, stem.lower()] += 1
    names = {}
    for source, (folder, stem) in planned.items():
        if counts[folder, stem.lower()] > 1:
            stem = f"{stem}_{hashlib.sha1(source.encode()).hexdigest()[:8]}"
        names[source] = f"{folder}/{stem}.png"
    return names


def _save(image: np.ndarray, path: Path) -> None:
    """Encode with OpenCV, write with Python: a full disk is an OSError naming the file, never a crash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), PNG_PARAMS)
    if not ok:
        raise ValueError(f"OpenCV could not encode the crop for {path}")
    try:
        path.write_bytes(encoded.tobytes())
    except OSError as err:  # a write error names no file by itself
        raise OSError(err.errno, err.strerror, str(path)) from err


@dataclass
class FaceResult:
    """What the face path made of one image: a status, and its usable faces with their crops (best first)."""

    status: str
    message: str = ""
    detector: str = ""
    faces: list[Face] = field(default_factory=list)
    crops: list[np.ndarray] = field(default_factory=list)


def faces_in_images(
    images: list[np.ndarray], detectors: list[Detector], cfg: CropConfig, every_face: bool = False
) -> list[FaceResult]:
    """Detect, validate, apply ``crop.no_face`` and crop: the best face of each image, or with ``every_face``
    every usable face."""
    results = []
    for image, (faces, detector, rejected) in zip(images, find_faces(images, detectors, cfg)):
        if faces:
            faces = faces if every_face else faces[:1]
            message = f"rejected first: {rejected}" if rejected else ""
            crops = [face_crop(image, face, cfg) for face in faces]
            results.append(FaceResult(Status.CROPPED, message, detector, faces, crops))
        elif cfg.no_face == "keep_full":
            crops = [face_crop(image, None, cfg)]
            results.append(FaceResult(Status.NO_FACE_KEPT_FULL, f"no usable face ({rejected})", crops=crops))
        else:
            results.append(FaceResult(Status.NO_FACE_SKIPPED, f"no usable face ({rejected})"))
    return results


def crop_faces(
    paths: list[Path], detectors: list[Detector], cfg: CropConfig, every_face: bool = False
) -> list[FaceResult]:
    """The one face path of crop and predict: read, then ``faces_in_images``; unreadable files get a status."""
    results = [FaceResult("")] * len(paths)
    loaded = []
    for i, path in enumerate(paths):
        image, problem = read_image(path, cfg)
        if image is None:
            results[i] = FaceResult(*problem)
        else:
            loaded.append((i, image))
    found = faces_in_images([image for _, image in loaded], detectors, cfg, every_face)
    for (i, _), result in zip(loaded, found):
        results[i] = result
    return results


def crop_images(
    items: list[RawItem],
    rows: dict[str, CropRow],
    names: dict[str, str],
    out_dir: Path,
    cfg: CropConfig,
    detectors: list[Detector],
) -> None:
    """Read, detect, crop and save ``items`` (candidate images), filling in their report rows."""
    for item, result in zip(items, crop_faces([item.path for item in items], detectors, cfg)):
        row = rows[item.source]
        row.status, row.message, row.detector = result.status, result.message, result.detector
        if result.faces:
            row.confidence = result.faces[0].confidence
            row.x, row.y, row.width, row.height = result.faces[0].box
        if result.crops:
            row.output = names[item.source]
            _save(result.crops[0], out_dir / row.output)


def crop_dataset(
    items: list[RawItem], out_dir: Path, dataset: str, cfg: CropConfig, detectors: list[Detector]
) -> pd.DataFrame:
    """Crop every candidate of ``items`` into ``out_dir``; return the report (one row per item)."""
    rows = {item.source: CropRow.of(item) for item in items}
    candidates = [item for item in items if not item.status]
    names = output_names(candidates, dataset)
    chunk = cfg.batch_size * LOAD_CHUNK
    with tqdm(total=len(candidates), desc=f"crop {dataset}", unit="img", disable=None) as progress:
        for start in range(0, len(candidates), chunk):
            crop_images(candidates[start : start + chunk], rows, names, out_dir, cfg, detectors)
            progress.update(len(candidates[start : start + chunk]))
    return pd.DataFrame([asdict(r) for r in rows.values()], columns=REPORT_COLUMNS).astype(
        {"label": "Int64", "x": "Int64", "y": "Int64", "width": "Int64", "height": "Int64"}
    )


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
        raise NoUsableImagesError(
            f"dataset '{dataset}': no usable image ({summarize(report) or 'no files'}); see {out_dir / CROP_REPORT}"
        )


def input_files(paths: list[str]) -> list[Path]:
    """The files named, and every file under the folders named, in order."""
    files = []
    for path in map(Path, paths):
        files += sorted(p for p in path.rglob("*") if p.is_file() or p.is_symlink()) if path.is_dir() else [path]
    return files
