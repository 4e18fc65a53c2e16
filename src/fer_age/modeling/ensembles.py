"""Ensembles of fine-tuning runs: one Keras model whose class probabilities are the mean of its members'
(Lakshminarayanan et al. 2017), scored on validation as the study scores, and taken apart again for Grad-CAM."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, log_loss

from fer_age.modeling.selection import worst_group_scores

if TYPE_CHECKING:
    import keras

MEMBER_PREFIX = "member_"  # an ensemble's members are its layers named member_0, member_1, ...


def ensemble_model(classifiers: list[keras.Model]) -> keras.Model:
    """One model averaging the class probabilities of ``classifiers`` (same input and classes; each keeps its
    own weights, layers and names, as layer ``member_<k>``)."""
    import keras

    inputs = keras.Input(classifiers[0].input_shape[1:], name="image")
    members = [keras.Model(c.inputs, c.outputs[0], name=f"{MEMBER_PREFIX}{k}") for k, c in enumerate(classifiers)]
    mean = keras.layers.Average(name="ensemble_mean")([member(inputs) for member in members])
    return keras.Model(inputs, mean, name=f"ensemble_of_{len(members)}")


def ensemble_members(model: keras.Model) -> list[keras.Model]:
    """The members of an :func:`ensemble_model`, or ``[model]`` for a single classifier."""
    members = [layer for layer in model.layers if layer.name.startswith(MEMBER_PREFIX)]
    return members or [model]


def validation_scores(
    y_true: np.ndarray, probabilities: np.ndarray, groups: np.ndarray | None, n_classes: int
) -> dict[str, float]:
    """The validation metrics a fit logs and selects on (``val_loss``: cross-entropy, no penalty terms), from class
    probabilities; with ``groups``, the worst age group's too."""
    y_pred = probabilities.argmax(axis=1)
    labels = list(range(n_classes))
    scores = {
        "val_loss": float(log_loss(y_true, np.clip(probabilities, 1e-7, 1.0), labels=labels)),
        "val_accuracy": float(accuracy_score(y_true, y_pred)),
        "val_macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
    }
    return {**scores, **(worst_group_scores(y_true, y_pred, groups, n_classes) if groups is not None else {})}
