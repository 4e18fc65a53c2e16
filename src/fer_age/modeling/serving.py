"""The MLflow model of a trained network: cropped face images in, class probabilities with label names out.

Logged as code with every trained model (``mlflow.pyfunc.log_model(python_model=<this file>)``), so it
must not import the ``fer_age`` package: it needs only Keras, NumPy, pandas and OpenCV. Its
``model_config`` holds what the .h5 file does not: the labels, the input size, the grayscale step, the
scaling the network was trained with and the smallest face side the crop stage accepts.

It takes face crops, not photos: ``fer-age predict``, ``fer_age.analyze`` and ``fer-age serve`` find the
faces first.
"""

from __future__ import annotations

import cv2
import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel

CHUNK = 64  # images per forward pass


class FaceEmotionModel(PythonModel):
    """Face crops (N x H x W x 3 uint8 RGB, one size per call, resized inside) -> ``label`` and one
    ``p_<label>`` column per label. Crops with a side below ``min_face`` pixels are refused.

    The signature and input example logged with the model describe its input, not type hints.
    """

    _skip_type_hint_validation = True

    def load_context(self, context) -> None:
        import keras

        self.model = keras.models.load_model(context.artifacts["keras_model"], compile=False)
        config = context.model_config
        self.labels, self.size = list(config["labels"]), int(config["img_size"])
        self.grayscale = bool(config["grayscale"])
        scaling = config.get("input_scaling", config.get("preprocessing"))  # models logged before the rename
        self.min_face = int(config.get("min_face", 1))
        self.scale = (lambda x: x / 255.0) if scaling == "rescale" else (lambda x: x)
        if scaling not in ("rescale", "builtin"):  # a keras.applications module
            self.scale = getattr(keras.applications, scaling).preprocess_input

    def prepare(self, images) -> np.ndarray:
        """The model's input: each image checked, made grayscale (as the crop stage does) and resized."""
        batch = []
        for i, image in enumerate(images):
            image = np.asarray(image, dtype=np.uint8)
            if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < self.min_face:
                raise MlflowException(
                    f"input {i} is an array of shape {image.shape}: the model takes RGB face crops, "
                    f"H x W x 3 with both sides at least {self.min_face} pixels (crop.min_face). Smaller "
                    "images cannot be faces; for photos, let `fer-age predict`/`fer-age serve` find the faces",
                    INVALID_PARAMETER_VALUE,
                )
            if self.grayscale:
                image = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
            batch.append(cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA))
        return self.scale(np.stack(batch).astype(np.float32))

    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        images = model_input.iloc[:, 0].tolist() if isinstance(model_input, pd.DataFrame) else model_input
        inputs = self.prepare(images)
        # in chunks: Keras' predict() sets up a dataset per call, slower than the network itself for a few images
        probabilities = np.concatenate(
            [self.model.predict_on_batch(inputs[i : i + CHUNK]) for i in range(0, len(inputs), CHUNK)]
        )
        frame = pd.DataFrame(probabilities.astype(np.float64), columns=[f"p_{label}" for label in self.labels])
        frame.insert(0, "label", [self.labels[i] for i in probabilities.argmax(axis=1)])
        return frame


mlflow.models.set_model(FaceEmotionModel())
