"""Emotions of the faces in photos: the crop stage's face path on every image, then a trained model on every
face. One row per face (its box, detector and confidence, the label and every probability), or one row per
image that has no face or cannot be read, with its status."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
from tqdm import tqdm

from fer_age.config import CropConfig
from fer_age.contracts import Status
from fer_age.faces.cropping import Face
from fer_age.faces.crops import FaceResult, crop_faces, faces_in_images
from fer_age.faces.detection import Detector, make_detector
from fer_age.faces.entries import printable
from fer_age.faces.formats import is_image
from fer_age.faces.images import read_image, size_problem
from fer_age.loading import load_config
from fer_age.modeling.face_model import FaceModel
from fer_age.tracking.runs import find_project

FACE_COLUMNS = ["face", "status", "detector", "confidence", "x", "y", "width", "height", "label"]
PREDICT_CHUNK = 128  # images read and detected at once


class CropClassifier(Protocol):
    """What prediction needs of a model: its labels, and ``label``/``p_<label>`` per face crop."""

    labels: list[str]

    def predict(self, crops: list[np.ndarray]) -> pd.DataFrame: ...


def top_k_columns(probabilities: pd.DataFrame, k: int) -> pd.DataFrame:
    """``label_2``, ``p_label_2`` ... ``label_k``, ``p_label_k``: the runners-up of each row (``label`` is first)."""
    values = probabilities.to_numpy()
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    names = [c.removeprefix("p_") for c in probabilities.columns]
    columns: dict[str, object] = {}
    for rank in range(1, order.shape[1]):
        columns[f"label_{rank + 1}"] = [names[i] for i in order[:, rank]]
        columns[f"p_label_{rank + 1}"] = np.take_along_axis(values, order[:, rank : rank + 1], axis=1)[:, 0]
    return pd.DataFrame(columns, index=probabilities.index)


def face_rows(results: list[FaceResult], model: CropClassifier, top_k: int = 1) -> pd.DataFrame:
    """One row per face of ``results`` (per image where there is no face), in order, with ``image`` the index
    of its image; faces are numbered from 0 within their image, best first."""
    rows, crops = [], []
    for image, result in enumerate(results):
        faces: list[Face | None] = [*result.faces] or [None] * len(result.crops)
        for number, (face, crop) in enumerate(zip(faces, result.crops)):
            box = face.box if face is not None else (None,) * 4
            confidence = face.confidence if face is not None else None
            rows.append([image, number, result.status, result.detector, confidence, *box, result.message])
            crops.append(crop)
        if not result.crops:
            rows.append([image, None, result.status, result.detector, None, None, None, None, None, result.message])
    table = pd.DataFrame(rows, columns=["image", *FACE_COLUMNS[:-1], "message"])
    probability_columns = [f"p_{label}" for label in model.labels]
    predicted = model.predict(crops) if crops else pd.DataFrame(columns=["label", *probability_columns])
    predicted.index = table.index[table["face"].notna()]
    ranked = top_k_columns(predicted[probability_columns], top_k)
    table = table.join(predicted[["label", *probability_columns]]).join(ranked)
    for column in ("face", "x", "y", "width", "height"):
        table[column] = table[column].astype("Int64")
    order = ["image", *FACE_COLUMNS, *probability_columns, *ranked.columns, "message"]
    return table[order]


def file_problem(path: Path) -> FaceResult | None:
    """The status of a file that is not there or not an image, else None."""
    if not path.exists():
        return FaceResult(Status.MISSING, "no such file")
    if not is_image(path.name):
        return FaceResult(Status.NOT_AN_IMAGE, f"extension {path.suffix or '(none)'} is not an image type")
    return None


def predict_files(
    files: list[Path], model: CropClassifier, cfg: CropConfig, top_k: int = 1, chunk: int = PREDICT_CHUNK
) -> pd.DataFrame:
    """One row per face found in ``files`` (per file where there is none, with its status), ``file`` first."""
    detectors = detectors_for(cfg)
    frames = []
    with tqdm(total=len(files), desc="predict", unit="img", disable=None) as progress:
        for start in range(0, len(files), chunk):
            batch = files[start : start + chunk]
            problems = {path: file_problem(path) for path in batch}
            readable = [path for path in batch if problems[path] is None]
            found = dict(zip(readable, crop_faces(readable, detectors, cfg, every_face=True)))
            results = [problems[path] or found[path] for path in batch]
            table = face_rows(results, model, top_k)
            table.insert(0, "file", [printable(str(batch[i])) for i in table.pop("image")])
            frames.append(table)
            progress.update(len(batch))
    return pd.concat(frames, ignore_index=True)


ImageInput = str | Path | bytes | np.ndarray


_DETECTORS: dict[str, list[Detector]] = {}  # built once per crop settings: analyze is called per image


def detectors_for(cfg: CropConfig) -> list[Detector]:
    """The detectors of ``cfg``, built once per process and settings."""
    key = repr(cfg)
    if key not in _DETECTORS:
        _DETECTORS[key] = [make_detector(d, cfg) for d in cfg.detectors]
    return _DETECTORS[key]


def faces_of(image: ImageInput, cfg: CropConfig) -> FaceResult:
    """The face path on one image: a file path, encoded bytes (JPEG, PNG, ...) or an RGB uint8 array."""
    if isinstance(image, np.ndarray):
        array = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
        if array.dtype != np.uint8 or array.shape[2] != 3:
            raise ValueError(f"an image array must be H x W x 3 (or H x W) uint8 RGB, not {image.dtype} {image.shape}")
        problem = size_problem(array, cfg)
        if problem:
            return FaceResult(*problem)
        return faces_in_images([array], detectors_for(cfg), cfg, every_face=True)[0]
    if isinstance(image, bytes):
        loaded, problem = read_image(io.BytesIO(image), cfg)
        if loaded is None:
            return FaceResult(*problem)
        return faces_in_images([loaded], detectors_for(cfg), cfg, every_face=True)[0]
    path = Path(image)
    return file_problem(path) or crop_faces([path], detectors_for(cfg), cfg, every_face=True)[0]


def face_records(image: ImageInput, model: CropClassifier, cfg: CropConfig, top_k: int = 1) -> list[dict]:
    """Every face of one image with its emotions, as dicts (``analyze`` and ``fer-age serve`` answer these)."""
    return as_records(face_rows([faces_of(image, cfg)], model, top_k), list(model.labels))


def as_records(table: pd.DataFrame, labels: list[str]) -> list[dict]:
    """Rows of ``face_rows`` as the dicts ``analyze`` returns."""
    records = []
    for row in table.to_dict("records"):
        record = {key: row[key] for key in ("status", "detector", "message")}
        if pd.notna(row["face"]):
            box = (row["x"], row["y"], row["width"], row["height"])
            record["box"] = None if pd.isna(row["x"]) else tuple(int(v) for v in box)
            record["confidence"] = None if pd.isna(row["confidence"]) else float(row["confidence"])
            record["label"] = row["label"]
            record["emotions"] = {label: float(row[f"p_{label}"]) for label in labels}
        records.append(record)
    return records


@lru_cache(maxsize=4)
def _face_model(model: str, project: Path | None, min_face: int, trust: bool) -> FaceModel:
    return FaceModel(model, trust, project, min_face)


def analyze(
    image: ImageInput, model: str, project: str | Path | None = None, top_k: int = 1, trust_model_code: bool = False
) -> list[dict]:
    """Every face in ``image`` with its emotions, as ``fer-age predict`` finds and scores them.

    ``image``: a file path, encoded image bytes or an RGB uint8 array. ``model``: a registered model
    (``models:/<name>@champion``, ``models:/<name>/<version>``), a run's (``runs:/<id>/model``) or a trained
    ``.h5`` file. ``project``: the project folder whose store and ``params.yaml`` (face detection settings) to
    use; default: ``MLFLOW_TRACKING_URI`` when set, else the project holding the working directory, whose
    ``params.yaml`` also gives the settings (default settings outside a project). Other MLflow URIs load only
    with ``trust_model_code`` (loading one runs its code).
    Returns one dict per face, best first: ``status``, ``detector``, ``box`` (x, y, width, height),
    ``confidence``, ``label``, ``emotions`` (label: probability); an image without a usable face gives one dict
    with its ``status`` and ``message`` (and, with ``crop.no_face: keep_full``, the whole image's emotions).
    """
    given = Path(project).resolve() if project else None
    root = given or find_project(Path.cwd())
    cfg = load_config(root / "params.yaml").crop if root else CropConfig()
    return face_records(image, _face_model(model, given, cfg.min_face, trust_model_code), cfg, top_k)
