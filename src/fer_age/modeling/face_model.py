"""A trained model that takes face crops, from a .h5 file or the project's MLflow store."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from fer_age.contracts import TrainingInfo, require
from fer_age.errors import FerAgeError
from fer_age.faces.images import square
from fer_age.tracking.models import serving_config

PROJECT_URIS = ("models:/", "runs:/")  # MLflow models of the project's own tracking store


class FaceModel:
    """A trained model that takes face crops: a .h5 file with its training.json, or an MLflow model URI.

    Loading an MLflow pyfunc model runs that model's Python code, so only the project's own models
    (``models:/``, ``runs:/`` in its tracking store) load unless ``trust_any_uri`` says otherwise. The store is
    the ``mlflow.db`` of ``project`` when given, else ``MLFLOW_TRACKING_URI``, else the ``mlflow.db`` of the
    project holding the working directory (``tracking.runs.model_store``); ``store`` says which was used.
    """

    def __init__(self, model: str, trust_any_uri: bool = False, project: Path | None = None, min_face: int = 1):
        path = Path(model)
        self.store = ""
        if path.suffix in (".h5", ".keras") and "://" not in model:
            self._load_file(
                require(path, "give a trained .h5 file or an MLflow model URI (runs:/..., models:/...)"), min_face
            )
        elif model.startswith(PROJECT_URIS) or trust_any_uri:
            self._load_mlflow(model, project)
        else:
            raise FerAgeError(
                f"--model {model} is not one of the project's models (a trained .h5 file, or models:/... or "
                "runs:/... in its tracking store). Loading an MLflow model runs its Python code: add "
                "--trust-model-code to load it only if you trust whoever made it"
            )

    def _load_file(self, path: Path, min_face: int) -> None:
        from fer_age.modeling import serving

        info = TrainingInfo.load(path.parent)
        model = serving.FaceEmotionModel()  # the MLflow model's own code, so both paths predict alike
        config = serving_config(info, False, min_face)  # crops from the face path are already grayscale
        model.load_context(SimpleNamespace(artifacts={"keras_model": str(path)}, model_config=config))
        self._predict = lambda batch: model.predict(None, batch)
        self.labels, self.img_size = info.labels, info.img_size

    def _load_mlflow(self, uri: str, project: Path | None) -> None:
        import mlflow

        from fer_age.tracking.runs import model_store, use_store

        if uri.startswith(PROJECT_URIS):
            self.store = use_store(model_store(project))
            print(f"model {uri} from the MLflow store {self.store}", file=sys.stderr)
        try:
            loaded = mlflow.pyfunc.load_model(uri)
        except Exception as err:  # MLflow raises several types for unknown runs, models and paths
            raise FerAgeError(f"cannot load the MLflow model {uri}: {str(err).splitlines()[0][:300]}") from None
        self._predict = loaded.predict
        self.labels, self.img_size = list(loaded.model_config["labels"]), int(loaded.model_config["img_size"])

    def predict(self, crops: list[np.ndarray]) -> pd.DataFrame:
        """``label`` and ``p_<label>`` per face crop (any sizes: each is resized to the model's input)."""
        return self._predict(np.stack([square(crop, self.img_size) for crop in crops]).astype(np.uint8))
