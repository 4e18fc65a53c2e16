"""``fer-age predict PATH... --model <.h5 | MLflow model URI> [--out predictions.csv]``: a trained model on
new photos, with the crop stage's detection and cropping and the model's own preprocessing.

One row per input file: its status (as in the crop report), the detector, the predicted label and one
probability column per label. Unreadable, too small or face-less files get a status, never a crash.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from tqdm import tqdm

from fer_age.config import Config
from fer_age.contracts import Status, TrainingInfo, require
from fer_age.errors import FerAgeError
from fer_age.faces.detection import face_crop, find_faces, make_detector, read_image, square
from fer_age.faces.formats import is_image, printable

PROJECT_URIS = ("models:/", "runs:/")  # MLflow models of the project's own tracking store


class FaceModel:
    """A trained model that takes face crops: a .h5 file with its training.json, or an MLflow model URI.

    Loading an MLflow pyfunc model runs that model's Python code, so only the project's own models
    (``models:/``, ``runs:/`` in its tracking store) load unless ``trust_any_uri`` says otherwise.
    """

    def __init__(self, model: str, trust_any_uri: bool = False):
        path = Path(model)
        if path.suffix in (".h5", ".keras") and "://" not in model:
            self._load_file(require(path, "give a trained .h5 file or an MLflow model URI (runs:/..., models:/...)"))
        elif model.startswith(PROJECT_URIS) or trust_any_uri:
            self._load_mlflow(model)
        else:
            raise FerAgeError(
                f"--model {model} is not one of the project's models (a trained .h5 file, or models:/... or "
                "runs:/... in its tracking store). Loading an MLflow model runs its Python code: add "
                "--trust-model-code to load it only if you trust whoever made it"
            )

    def _load_file(self, path: Path) -> None:
        from fer_age.modeling import serving
        from fer_age.registry import serving_preprocessing

        info = TrainingInfo.load(path.parent)
        model = serving.FaceEmotionModel()  # the MLflow model's own code, so both paths predict alike
        model.load_context(
            SimpleNamespace(
                artifacts={"keras_model": str(path)},
                model_config={
                    "labels": info.labels,
                    "img_size": info.img_size,
                    "grayscale": False,
                    "preprocessing": serving_preprocessing(info.model, info.preprocessing),
                },
            )
        )
        self._predict = lambda batch: model.predict(None, batch)
        self.labels, self.img_size = info.labels, info.img_size

    def _load_mlflow(self, uri: str) -> None:
        import mlflow

        from fer_age.tracking.runs import use_store

        use_store()
        try:
            loaded = mlflow.pyfunc.load_model(uri)
        except Exception as err:  # MLflow raises several types for unknown runs, models and paths
            raise FerAgeError(f"cannot load the MLflow model {uri}: {str(err).splitlines()[0][:300]}") from None
        self._predict = loaded.predict
        self.labels, self.img_size = list(loaded.model_config["labels"]), int(loaded.model_config["img_size"])

    def predict(self, crops: list[np.ndarray]) -> pd.DataFrame:
        """``label`` and ``p_<label>`` per face crop (any sizes: each is resized to the model's input)."""
        return self._predict(np.stack([square(crop, self.img_size) for crop in crops]).astype(np.uint8))


def input_files(paths: list[str]) -> list[Path]:
    """The files named, and every file under the folders named, in order."""
    files = []
    for path in map(Path, paths):
        files += sorted(p for p in path.rglob("*") if p.is_file() or p.is_symlink()) if path.is_dir() else [path]
    return files


def predict_files(files: list[Path], model: FaceModel, config: Config, chunk: int) -> pd.DataFrame:
    """One row per file: status, detector, label and probabilities (empty where there is no prediction)."""
    detectors = [make_detector(d, config.crop) for d in config.crop.detectors]
    rows = []
    for start in tqdm(range(0, len(files), chunk), desc="predict", unit="batch", disable=None):
        batch, images = files[start : start + chunk], []
        statuses = {}
        for path in batch:
            if not path.exists():
                statuses[path] = (Status.MISSING, "no such file", "")
            elif not is_image(path.name):
                statuses[path] = (Status.NOT_AN_IMAGE, f"extension {path.suffix or '(none)'} is not an image type", "")
            else:
                image, problem = read_image(path, config.crop)
                if image is None:
                    statuses[path] = (*problem, "")
                else:
                    images.append((path, image))
        crops = {}
        for (path, image), (face, detector, rejected) in zip(
            images, find_faces([i for _, i in images], detectors, config.crop)
        ):
            if face is None and config.crop.no_face == "skip":
                statuses[path] = (Status.NO_FACE_SKIPPED, f"no usable face ({rejected})", "")
                continue
            status = Status.CROPPED if face is not None else Status.NO_FACE_KEPT_FULL
            statuses[path] = (status, rejected and f"rejected first: {rejected}", detector)
            crops[path] = face_crop(image, face, config.crop)
        predicted = model.predict(list(crops.values())) if crops else pd.DataFrame()
        by_file = dict(zip(crops, predicted.to_dict("records")))
        for path in batch:
            status, message, detector = statuses[path]
            rows.append(
                {
                    "file": printable(str(path)),
                    "status": status,
                    "detector": detector,
                    "message": message,
                    **by_file.get(path, {}),
                }
            )
    columns = ["file", "status", "detector", "label", *[f"p_{label}" for label in model.labels], "message"]
    return pd.DataFrame(rows).reindex(columns=columns)


def main(config: Config, args: argparse.Namespace) -> None:
    """``fer-age predict``."""
    out = Path(args.out)
    if out.is_dir() or out.suffix.lower() != ".csv":
        raise FerAgeError(f"--out {out} must name a .csv file, not a folder or another kind of file")
    out.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(out.parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise FerAgeError(f"--out {out} cannot be written (permissions)")
    model = FaceModel(args.model, args.trust_model_code)
    files = input_files(args.paths)
    table = predict_files(files, model, config, config.crop.batch_size * 8)
    table.to_csv(out, index=False, float_format="%.6g")
    counts = ", ".join(f"{s}={n}" for s, n in table["status"].value_counts().items())
    print(
        f"predict: {len(table)} files ({counts}); labels: {table['label'].value_counts().to_dict()}; "
        f"written to {args.out}"
    )
