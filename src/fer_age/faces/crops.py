"""Cropping a dataset: every raw item read, its face detected and cut out, the crop saved, one report row each."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from fer_age.config import Config, CropConfig
from fer_age.contracts import (
    CROP_REPORT,
    REPORT_COLUMNS,
    USABLE,
    Status,
)
from fer_age.errors import FerAgeError
from fer_age.faces.cropping import Face, face_crop
from fer_age.faces.detection import Detector, find_faces, make_detector
from fer_age.faces.entries import RawItem, printable
from fer_age.faces.formats import is_image
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
    """What the face path made of one image: a status, and the face and crop where there is one."""

    status: str
    message: str = ""
    detector: str = ""
    face: Face | None = None
    crop: np.ndarray | None = None


def crop_faces(paths: list[Path], detectors: list[Detector], cfg: CropConfig) -> list[FaceResult]:
    """The one face path of crop and predict: read, detect, validate, apply ``crop.no_face``, crop."""
    results = [FaceResult("")] * len(paths)
    loaded = []
    for i, path in enumerate(paths):
        image, problem = read_image(path, cfg)
        if image is None:
            results[i] = FaceResult(*problem)
        else:
            loaded.append((i, image))
    for (i, image), (face, detector, rejected) in zip(loaded, find_faces([im for _, im in loaded], detectors, cfg)):
        if face is not None:
            message = f"rejected first: {rejected}" if rejected else ""
            results[i] = FaceResult(Status.CROPPED, message, detector, face, face_crop(image, face, cfg))
        elif cfg.no_face == "keep_full":
            results[i] = FaceResult(
                Status.NO_FACE_KEPT_FULL, f"no usable face ({rejected})", crop=face_crop(image, None, cfg)
            )
        else:
            results[i] = FaceResult(Status.NO_FACE_SKIPPED, f"no usable face ({rejected})")
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
        if result.face is not None:
            row.confidence = result.face.confidence
            row.x, row.y, row.width, row.height = result.face.box
        if result.crop is not None:
            row.output = names[item.source]
            _save(result.crop, out_dir / row.output)


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


class CropClassifier(Protocol):
    """What predict needs of a model: its labels, and ``label``/``p_<label>`` per face crop."""

    labels: list[str]

    def predict(self, crops: list[np.ndarray]) -> pd.DataFrame: ...


def predict_files(files: list[Path], model: CropClassifier, config: Config, chunk: int) -> pd.DataFrame:
    """One row per file: status, detector, label and probabilities (empty where there is no prediction)."""
    detectors = [make_detector(d, config.crop) for d in config.crop.detectors]
    rows = []
    for start in tqdm(range(0, len(files), chunk), desc="predict", unit="batch", disable=None):
        batch = files[start : start + chunk]
        statuses: dict[Path, FaceResult] = {}
        for path in batch:
            if not path.exists():
                statuses[path] = FaceResult(Status.MISSING, "no such file")
            elif not is_image(path.name):
                statuses[path] = FaceResult(
                    Status.NOT_AN_IMAGE, f"extension {path.suffix or '(none)'} is not an image type"
                )
        readable = [path for path in batch if path not in statuses]
        statuses.update(zip(readable, crop_faces(readable, detectors, config.crop)))
        crops = {path: r.crop for path, r in statuses.items() if r.crop is not None}
        predicted = model.predict(list(crops.values())) if crops else pd.DataFrame()
        by_file = dict(zip(crops, predicted.to_dict("records")))
        for path in batch:
            result = statuses[path]
            rows.append(
                {
                    "file": printable(str(path)),
                    "status": result.status,
                    "detector": result.detector,
                    "message": result.message,
                    **by_file.get(path, {}),
                }
            )
    columns = ["file", "status", "detector", "label", *[f"p_{label}" for label in model.labels], "message"]
    return pd.DataFrame(rows).reindex(columns=columns)
