"""Grad-CAM: where a model looks when it decides, and how much of it falls on the upper or lower face."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fer_age.errors import FerAgeError
from fer_age.modeling.ensembles import ensemble_members
from fer_age.modeling.inference import Predictor, SplitImages, load_keras_model
from fer_age.registry import ModelSpec, model_spec

UPPER_FACE = 0.5  # crops are the face box plus a margin: the upper half holds eyes and brows, the lower the mouth


def target_layer(model_name: str, spec: ModelSpec) -> str:
    """The Grad-CAM layer the registry declares for a model (its last convolutional feature map)."""
    if not spec.gradcam_layer:
        raise FerAgeError(
            f"model '{model_name}' declares no Grad-CAM target layer in the registry (registry.ModelSpec.gradcam_layer)"
        )
    return spec.gradcam_layer


def gradcam(model, layer: str, images: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Grad-CAM maps (N x H x W, each scaled to [0, 1]) of ``classes`` for preprocessed float ``images``.

    The gradient of the class's log-probability weights the channels of ``layer``'s feature map; the
    weighted sum, rectified, is resized to the input.
    """
    import keras
    import tensorflow as tf

    probe = keras.Model(model.inputs, [model.get_layer(layer).output, model.output])
    with tf.GradientTape() as tape:
        features, probabilities = probe(tf.convert_to_tensor(images, tf.float32), training=False)
        chosen = tf.gather(probabilities, classes, axis=1, batch_dims=1)
        score = tf.math.log(tf.maximum(chosen, 1e-7))
    gradients = tape.gradient(score, features)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    maps = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))[..., None]
    maps = tf.image.resize(maps, images.shape[1:3], method="bilinear")[..., 0].numpy()
    peak = maps.reshape(len(maps), -1).max(axis=1)
    return np.divide(maps, peak[:, None, None], out=np.zeros_like(maps), where=peak[:, None, None] > 0)


def upper_face_share(maps: np.ndarray) -> np.ndarray:
    """The share of each map's saliency in the upper face (eyes, brows); 1 minus it is the lower face's."""
    cut = int(round(maps.shape[1] * UPPER_FACE))
    total = maps.sum(axis=(1, 2))
    return np.divide(maps[:, :cut].sum(axis=(1, 2)), total, out=np.full(len(maps), np.nan), where=total > 0)


def bootstrap_mean(values: np.ndarray, samples: int, level: float, seed: int) -> tuple[float, float, float]:
    """Mean of ``values`` with a percentile bootstrap CI over them (seeded)."""
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return np.nan, np.nan, np.nan
    means = np.random.default_rng(seed).choice(values, size=(samples, len(values))).mean(axis=1)
    return float(values.mean()), float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, (1 + level) / 2))


def bootstrap_difference(
    values: np.ndarray, reference: np.ndarray, samples: int, level: float, seed: int
) -> tuple[float, float, float]:
    """Mean of ``values`` minus mean of ``reference`` (different images), with a percentile bootstrap CI that
    resamples each group's images independently (seeded)."""
    values, reference = values[~np.isnan(values)], reference[~np.isnan(reference)]
    if len(values) == 0 or len(reference) == 0:
        return np.nan, np.nan, np.nan
    rng = np.random.default_rng(seed)
    diffs = rng.choice(values, size=(samples, len(values))).mean(axis=1) - rng.choice(
        reference, size=(samples, len(reference))
    ).mean(axis=1)
    low, high = np.quantile(diffs, ((1 - level) / 2, (1 + level) / 2))
    return float(values.mean() - reference.mean()), float(low), float(high)


def share_table(cells: pd.DataFrame, samples: int, level: float, seed: int) -> pd.DataFrame:
    """Per model x test age group (x emotion, and all emotions together): the upper-face share with its CI."""
    rows = []
    for by in (
        ["model_name", "train_age_group", "test_age_group", "emotion"],
        ["model_name", "train_age_group", "test_age_group"],
    ):
        for keys, group in cells.groupby(by, sort=False):
            mean, low, high = bootstrap_mean(group["upper_share"].to_numpy(), samples, level, seed)
            rows.append(
                {
                    **dict(zip(by, keys)),
                    "emotion": keys[3] if len(keys) > 3 else "all",
                    "degenerate": group["degenerate"].iat[0] if "degenerate" in group else "",
                    "n": len(group),
                    "upper_share": mean,
                    "upper_share_ci_low": low,
                    "upper_share_ci_high": high,
                    "lower_share": 1 - mean,
                    "correct": float(group["correct"].mean()),
                }
            )
    return pd.DataFrame(rows)


def select_images(tests: dict[str, SplitImages], per_cell: int, seed: int) -> pd.DataFrame:
    """Up to ``per_cell`` test images per test age group and label, drawn with ``seed``; the same for every model."""
    pool = pd.concat(
        [
            pd.DataFrame(
                {
                    "test_dataset": name,
                    "index": np.arange(len(t.labels)),
                    "label": t.labels,
                    "test_age_group": t.age_groups,
                    "source": t.sources,
                }
            )
            for name, t in tests.items()
        ],
        ignore_index=True,
    )
    rng = np.random.default_rng(seed)
    chosen = [
        cell.iloc[np.sort(rng.choice(len(cell), min(per_cell, len(cell)), replace=False))]
        for _, cell in pool.groupby(["test_age_group", "label"], sort=True)
    ]
    return pd.concat(chosen, ignore_index=True)


def explain_model(
    predictor: Predictor, images: np.ndarray, chosen: pd.DataFrame, labels: list[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """Per chosen image: prediction, correctness and upper-face share of the Grad-CAM map; and the maps (an
    ensemble's: the mean of its members' maps for the ensemble's predicted class)."""
    from fer_age.modeling.models import preprocessing_fn

    info = predictor.info
    spec = model_spec(info.model)
    layer = target_layer(info.model, spec)
    model = load_keras_model(predictor)
    x = np.asarray(preprocessing_fn(spec, info.preprocessing)(images.astype(np.float32)))
    predicted = model.predict(x, verbose=0).argmax(axis=1)
    maps = np.mean([gradcam(member, layer, x, predicted) for member in ensemble_members(model)], axis=0)
    cells = chosen.assign(
        model_name=info.name,
        train_age_group=info.age_group,
        degenerate=info.degenerate,
        predicted=predicted,
        correct=predicted == chosen["label"].to_numpy(),
        upper_share=upper_face_share(maps),
        emotion=[labels[i] for i in chosen["label"]],
    )
    return cells, maps
