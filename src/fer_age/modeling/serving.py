"""The MLflow model of a trained network: cropped face images in, class probabilities with label names out.

Logged as code with every trained model (``mlflow.pyfunc.log_model(python_model=<this file>)``), so it
must not import the ``fer_age`` package: it needs only Keras, NumPy, pandas and OpenCV. Its
``model_config`` holds what the .h5 file does not: the labels, the input size, the grayscale step and
the scaling the network was trained with.
"""

from __future__ import annotations

import cv2
import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel


class FaceEmotionModel(PythonModel):
    """Face crops (N x H x W x 3 uint8 RGB, any size) -> ``label`` and one ``p_<label>`` column per label.

    The signature and input example logged with the model describe its input, not type hints.
    """

    _skip_type_hint_validation = True

    def load_context(self, context) -> None:
        import keras

        self.model = keras.models.load_model(context.artifacts["keras_model"], compile=False)
        config = context.model_config
        self.labels, self.size = list(config["labels"]), int(config["img_size"])
        self.grayscale, self.preprocessing = bool(config["grayscale"]), config["preprocessing"]
        self.scale = (lambda x: x / 255.0) if self.preprocessing == "rescale" else (lambda x: x)
        if self.preprocessing not in ("rescale", "builtin"):  # a keras.applications module
            self.scale = getattr(keras.applications, self.preprocessing).preprocess_input

    def prepare(self, images) -> np.ndarray:
        """The model's input: each image made grayscale (as the crop stage does) and resized."""
        batch = []
        for image in images:
            image = np.asarray(image, dtype=np.uint8)
            if self.grayscale:
                image = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
            batch.append(cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA))
        return self.scale(np.stack(batch).astype(np.float32))

    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        images = model_input.iloc[:, 0].tolist() if isinstance(model_input, pd.DataFrame) else model_input
        probabilities = self.model.predict(self.prepare(images), verbose=0)
        frame = pd.DataFrame(probabilities.astype(np.float64), columns=[f"p_{label}" for label in self.labels])
        frame.insert(0, "label", [self.labels[i] for i in probabilities.argmax(axis=1)])
        return frame


mlflow.models.set_model(FaceEmotionModel())
