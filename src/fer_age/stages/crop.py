"""Crop stage: detect the face in every raw image and save the crops, with one report row per entry."""

from __future__ import annotations

import argparse
import hashlib
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from fer_age.config import Config, CropConfig
from fer_age.contracts import CROP_REPORT, CROPPED, RAW, REPORT_COLUMNS, USABLE, Status, fresh_dir
from fer_age.errors import FerAgeError
from fer_age.faces.detection import Detector, face_crop, find_faces, make_detector, read_image
from fer_age.faces.formats import RawItem, check_labels, discover

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


def crop_images(
    items: list[RawItem],
    rows: dict[str, CropRow],
    names: dict[str, str],
    out_dir: Path,
    cfg: CropConfig,
    detectors: list[Detector],
) -> None:
    """Read, detect, crop and save ``items`` (candidate images), filling in their report rows."""
    loaded = []
    for item in items:
        image, problem = read_image(item.path, cfg)
        if image is None:
            rows[item.source].status, rows[item.source].message = problem
        else:
            loaded.append((item, image))
    found = find_faces([image for _, image in loaded], detectors, cfg)
    for (item, image), (face, detector, rejected) in zip(loaded, found):
        row = rows[item.source]
        if face is not None:
            row.status, row.detector, row.confidence = Status.CROPPED, detector, face.confidence
            row.x, row.y, row.width, row.height = face.box
            row.message = f"rejected first: {rejected}" if rejected else ""
        else:
            row.status = Status.NO_FACE_KEPT_FULL if cfg.no_face == "keep_full" else Status.NO_FACE_SKIPPED
            row.message = f"no usable face ({rejected})"
            if cfg.no_face != "keep_full":
                continue
        row.output = names[item.source]
        _save(face_crop(image, face, cfg), out_dir / row.output)


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
