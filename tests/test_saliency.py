"""Grad-CAM: maps follow what a model uses; the upper/lower face share; declared target layers."""

import numpy as np
import pytest

from fer_age.errors import FerAgeError
from fer_age.modeling.saliency import bootstrap_difference, bootstrap_mean, gradcam, target_layer, upper_face_share
from fer_age.registry import MODELS, ModelSpec


def _two_feature_model(uses_channel: int):
    """32x32 RGB -> 1x1 'features' (red, green) -> average -> 2 classes driven by one channel only."""
    import keras

    inputs = keras.Input((32, 32, 3))
    features = keras.layers.Conv2D(2, 1, use_bias=False, activation="relu", name="features")
    x = features(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(2, activation="softmax")
    outputs = dense(x)
    features.set_weights([np.eye(3, 2, dtype=np.float32).reshape(1, 1, 3, 2)])
    kernel = np.zeros((2, 2), np.float32)
    kernel[uses_channel] = [-4.0, 4.0]
    dense.set_weights([kernel, np.zeros(2, np.float32)])
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("channel, region", [(0, (slice(0, 12), slice(0, 12))), (1, (slice(20, 32), slice(20, 32)))])
def test_gradcam_peaks_where_the_model_looks(channel, region):
    image = np.zeros((1, 32, 32, 3), np.float32)
    image[0, :12, :12, 0] = 1.0  # a red square top left
    image[0, 20:, 20:, 1] = 1.0  # a green square bottom right
    maps = gradcam(_two_feature_model(channel), "features", image, np.array([1]))
    peak = np.unravel_index(maps[0].argmax(), maps[0].shape)
    assert region[0].start <= peak[0] < region[0].stop and region[1].start <= peak[1] < region[1].stop
    inside = maps[0][region].mean()
    assert inside > 0.9 and maps[0].sum() - maps[0][region].sum() < 0.1 * maps[0][region].sum()


def test_upper_face_share_and_its_ci():
    maps = np.zeros((3, 10, 10))
    maps[0, :3] = 1  # eyes only
    maps[1, 7:] = 1  # mouth only
    maps[2] = 1  # everywhere
    np.testing.assert_allclose(upper_face_share(maps), [1.0, 0.0, 0.5])
    mean, low, high = bootstrap_mean(np.array([0.2, 0.4, 0.6, 0.8]), 500, 0.95, 0)
    assert mean == pytest.approx(0.5) and low < 0.5 < high
    assert np.isnan(upper_face_share(np.zeros((1, 4, 4)))[0])


def test_difference_ci_resamples_each_group_and_separates_only_different_groups():
    rng = np.random.default_rng(1)
    eyes, mouth = rng.uniform(0.6, 0.8, 20), rng.uniform(0.2, 0.4, 20)
    diff, low, high = bootstrap_difference(mouth, eyes, 1000, 0.95, 0)
    assert diff == pytest.approx(mouth.mean() - eyes.mean()) and low <= diff <= high < 0
    diff, low, high = bootstrap_difference(rng.uniform(0.2, 0.8, 20), rng.uniform(0.2, 0.8, 20), 1000, 0.95, 0)
    assert low < 0 < high
    assert np.isnan(bootstrap_difference(np.array([np.nan]), eyes, 100, 0.95, 0)[0])


def test_every_registry_model_declares_a_target_layer_and_a_model_without_fails_by_name():
    assert all(target_layer(name, spec) for name, spec in MODELS.items())
    with pytest.raises(FerAgeError, match="'newnet'"):
        target_layer("newnet", ModelSpec("NewNet", None, None, None))


def test_explain_section_draws_no_conclusion_for_a_degenerate_model():
    from fer_age.modeling.saliency import share_table
    from fer_age.results.reporting import section

    rng = np.random.default_rng(2)
    rows = []
    for name, own, degenerate in (("LEARNED", "adult", ""), ("CONSTANT", "adult", "predicts only 'Angry'")):
        for group, share in (("adult", 0.8), ("older", 0.2)):
            rows += [
                {
                    "model_name": name,
                    "train_age_group": own,
                    "test_age_group": group,
                    "emotion": "Happy",
                    "degenerate": degenerate,
                    "upper_share": share + rng.uniform(-0.05, 0.05),
                    "correct": True,
                }
                for _ in range(12)
            ]
    import pandas as pd

    cells = pd.DataFrame(rows)
    table = share_table(cells, 200, 0.95, 0)
    assert set(table.loc[table["model_name"] == "CONSTANT", "degenerate"]) == {"predicts only 'Angry'"}
    text = section(cells, table, ["adult", "older"], 200, 0.95, 0)
    learned, constant = text.split("- **LEARNED**")[1].split("- **CONSTANT**")
    assert "more on the lower face" in learned and "degenerate" not in learned
    assert "**degenerate** (predicts only 'Angry')" in constant
    assert "more on" not in constant and "against adult" not in constant
