"""Fitting with real Keras runs on a small learnable split: a model soup averages runs that share one start, an
ensemble their class probabilities, and the start is kept (and said) where validation prefers it."""

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
from conftest import LABELS, tiny_params

from fer_age.contracts import MANIFEST

AGE_GROUPS = ["child", "adult", "older"]


def learnable_split(root: Path) -> Path:
    """A split folder of 32 px images whose class is the bright quadrant (train 32, valid 16 images)."""
    rng = np.random.default_rng(0)
    split_dir = root / "QUADRANTS"
    split_dir.mkdir()
    rows = []
    for split, n in (("train", 32), ("valid", 16)):
        y = np.arange(n) % len(LABELS)
        x = rng.integers(0, 60, size=(n, 32, 32, 3)).astype(np.uint8)
        for image, label in zip(x, y):
            row, col = divmod(int(label), 2)
            image[row * 16 : (row + 1) * 16, col * 16 : (col + 1) * 16] += 150
        np.save(split_dir / f"X_{split}.npy", x)
        np.save(split_dir / f"y_{split}.npy", y.astype(np.int64))
        rows += [{"split": split, "age_group": "adult"}] * n
    pd.DataFrame(rows).to_csv(split_dir / MANIFEST, index=False)
    return split_dir


def dense_run(x: np.ndarray, y: np.ndarray, start: list[np.ndarray], seed: int):
    """A real Keras run from ``start``: a softmax layer fitted for 3 epochs, with its data in seed ``seed``'s order."""
    import keras

    from fer_age.modeling.fitting import Run
    from fer_age.modeling.selection import argmax_macro_f1

    model = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="categorical_crossentropy", metrics=[argmax_macro_f1(2)])
    model.set_weights(start)

    def validate() -> dict[str, float]:
        return {f"val_{k}": float(v) for k, v in model.evaluate(x, np.eye(2)[y], verbose=0, return_dict=True).items()}

    initial = validate()
    order = np.random.default_rng(seed).permutation(len(y))
    model.fit(x[order], np.eye(2)[y[order]], epochs=3, batch_size=8, shuffle=False, verbose=0)
    return Run(
        model, model, validate, lambda: model.predict(x, verbose=0), y, None, start, initial, 3, validate(), [],
        len(y), 2, seed,
    )  # fmt: skip


def test_a_soup_is_the_average_of_its_runs_and_the_start_where_the_soup_scores_no_higher():
    """:func:`combine_runs` on two real runs from one start that is mostly right: the kept model is their weight
    average (the soup, with its own validation scores); where the soup must beat the start by more than any model
    can, the start itself is kept and said."""

    from fer_age.loading import config_from_dict
    from fer_age.modeling.fitting import combine_runs
    from fer_age.modeling.hyperparameters import Hyperparameters

    x = np.random.default_rng(0).normal(size=(48, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    start = [np.array([[-1, 1], [0, 0], [0, 0], [0, 0]], "float32"), np.zeros(2, "float32")]  # the sign of x0
    hp = dataclasses.replace(Hyperparameters.resolve(config_from_dict(tiny_params()), 42), soup=2, interpolation=())
    first, second = dense_run(x, y, start, 42), dense_run(x, y, start, 1042)
    runs = [first.model.get_weights(), second.model.get_weights()]
    assert not np.allclose(runs[0][0], runs[1][0])  # another order of the data, other weights
    result = combine_runs([first, second], hp)  # no blends (interpolation ()): nothing to log to MLflow
    soup = second.model.get_weights()
    second.model.set_weights(runs[1])
    kept = combine_runs([first, second], dataclasses.replace(hp, start_margin=1.0))  # no model gains 1.0

    assert not result.kept_start and result.soup_epochs == [3, 3] and result.best_epoch == 3
    for weights, a, b in zip(soup, *runs, strict=True):
        np.testing.assert_allclose(weights, (a + b) / 2, atol=1e-7)
    assert result.best_metrics["val_macro_f1"] > first.initial["val_macro_f1"]
    assert kept.kept_start and kept.best_epoch == 0 and kept.best_metrics == first.initial
    for weights, start_weights in zip(second.model.get_weights(), start, strict=True):
        np.testing.assert_array_equal(weights, start_weights)


def test_a_greedy_soup_leaves_out_a_run_that_would_lower_its_validation_score_and_a_uniform_one_does_not():
    """Two real runs that learned and one whose weights point the other way: the greedy soup keeps the average of
    runs that score no lower together, never the harmful one, and scores at least as well as its best run on
    validation; the uniform soup (``train.soup_recipe: uniform``) averages all three and scores lower."""
    from fer_age.loading import config_from_dict
    from fer_age.modeling.fitting import combine_runs, soup_runs
    from fer_age.modeling.hyperparameters import Hyperparameters
    from fer_age.modeling.selection import average_weights

    x = np.random.default_rng(0).normal(size=(48, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    start = [np.array([[-1, 1], [0, 0], [0, 0], [0, 0]], "float32"), np.zeros(2, "float32")]
    hp = dataclasses.replace(Hyperparameters.resolve(config_from_dict(tiny_params()), 42), soup=3, interpolation=())
    assert hp.soup_recipe == "greedy"  # the default
    runs = [dense_run(x, y, start, seed) for seed in (42, 1042, 2042)]
    harmful, vessel = runs[0], runs[-1]  # the stage seed's run: the soup's best run is another
    harmful.model.set_weights([-3 * w for w in harmful.model.get_weights()])  # the average with it points away
    harmful.best = harmful.validate()
    for i, run in enumerate(runs):  # each run kept another epoch of a history of its own length
        run.best_epoch, run.records = 2 + i, [{"epoch": e} for e in range(1, 4 + i)]
    weights = {r.seed: r.model.get_weights() for r in runs}

    greedy = combine_runs(runs, hp)
    greedy_weights = vessel.model.get_weights()
    vessel.model.set_weights(weights[vessel.seed])  # the vessel holds its own run again
    uniform = soup_runs(runs, dataclasses.replace(hp, soup_recipe="uniform"))
    uniform_weights, uniform_score = vessel.model.get_weights(), vessel.validate()["val_macro_f1"]

    assert 42 not in greedy.soup_seeds and greedy.soup_seeds and greedy.soup_epochs == [2, 3, 4]
    in_soup = [r for r in runs if r.seed in greedy.soup_seeds]
    leading = next(r for r in in_soup if r.best["val_macro_f1"] == max(s.best["val_macro_f1"] for s in in_soup))
    assert greedy.best_epoch == leading.best_epoch and len(greedy.history) == len(leading.records)  # its best run's
    for kept, average in zip(greedy_weights, average_weights([weights[s] for s in greedy.soup_seeds]), strict=True):
        np.testing.assert_allclose(kept, average, atol=1e-7)
    best_run = max(r.best["val_macro_f1"] for r in runs)
    assert greedy.best_metrics["val_macro_f1"] >= best_run > uniform_score
    assert sorted(r.seed for r in uniform[0]) == [42, 1042, 2042] and uniform[1]["val_macro_f1"] == uniform_score
    for kept, average in zip(uniform_weights, average_weights(list(weights.values())), strict=True):
        np.testing.assert_allclose(kept, average, atol=1e-7)


def test_an_ensemble_averages_its_runs_as_each_was_kept_and_is_the_start_where_every_run_kept_it(tmp_path):
    """``train.soup_recipe: ensemble`` on two real runs from one start: each run is kept as a single run would be
    (here its last epoch, or the start where its fit kept epoch 0, as selection does); the kept model predicts
    the mean of those models' class probabilities, saves and loads as one Keras model, scores on validation as
    sklearn does on that mean, and is said as an ensemble; where every run kept the start, the start itself."""
    import keras
    from sklearn.metrics import f1_score

    from fer_age.loading import config_from_dict
    from fer_age.modeling.ensembles import ensemble_members
    from fer_age.modeling.fitting import combine_runs, ensemble_runs
    from fer_age.modeling.hyperparameters import Hyperparameters
    from fer_age.modeling.training import kept_model

    x = np.random.default_rng(0).normal(size=(48, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    start = [np.array([[-1, 1], [0, 0], [0, 0], [0, 0]], "float32"), np.zeros(2, "float32")]
    config = config_from_dict(tiny_params())
    hp = dataclasses.replace(Hyperparameters.resolve(config, 42), soup=2, soup_recipe="ensemble")

    def ensemble(*kept_start: bool):
        runs = [dense_run(x, y, start, seed) for seed in (42, 1042)]
        for run in (r for r, back in zip(runs, kept_start) if back):  # no epoch beat the start on validation
            run.model.set_weights(start)
            run.best_epoch, run.best = 0, run.initial
        members = [combine_runs([run], hp) for run in runs]
        probabilities = [run.model.predict(x, verbose=0) for run in runs]  # as each run was kept
        return ensemble_runs(runs, members, hp), runs, probabilities

    both, runs, probabilities = ensemble(False, False)
    assert not np.allclose(*probabilities)  # another order of the data, other predictions
    mean = np.mean(probabilities, axis=0)
    path = tmp_path / "ensemble.h5"  # the study's format (registry.model_filename)
    both.model.save(path)
    loaded = keras.models.load_model(path, compile=False)
    assert both.ensemble and not both.kept_start and both.alpha == 1.0
    assert both.soup_seeds == [42, 1042] and both.soup_epochs == [3, 3] and both.soup_alphas == [1.0, 1.0]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), mean, atol=1e-6)
    assert len(ensemble_members(loaded)) == 2 and ensemble_members(runs[0].model) == [runs[0].model]
    expected = f1_score(y, mean.argmax(axis=1), average="macro")
    assert both.best_metrics["val_macro_f1"] == expected and np.array_equal(both.y_pred, mean.argmax(axis=1))
    assert kept_model(both, 2) == "an ensemble of 2 runs (seeds 42, 1042; the runs' epochs 3, 3)"

    one, runs, probabilities = ensemble(False, True)  # the second run keeps the start
    for now, then in zip(runs[1].model.get_weights(), start, strict=True):  # the second member is the start
        np.testing.assert_array_equal(now, then)
    assert one.soup_epochs == [3, 0] and one.soup_alphas == [1.0, 0.0] and not one.kept_start
    np.testing.assert_allclose(one.model.predict(x, verbose=0), np.mean(probabilities, axis=0), atol=1e-6)
    assert kept_model(one, 2) == (
        "an ensemble of 2 runs (seeds 42, 1042; the runs' epochs 3, 0; kept 1, 0 of the way from the start)"
    )

    none, runs, _ = ensemble(True, True)
    assert none.kept_start and none.best_epoch == 0 and none.best_metrics == runs[0].initial
    assert none.model is runs[0].classifier and none.ensemble
    assert kept_model(none, 2) == "the starting model itself (no training step or ensemble beat it on validation)"
    for now, then in zip(none.model.get_weights(), start, strict=True):
        np.testing.assert_array_equal(now, then)


def test_an_ensemble_of_one_classifier_twice_has_its_grad_cam_maps():
    """Grad-CAM of an ensemble is the mean of its members' maps: two copies of one small convolutional classifier
    give exactly that classifier's maps (an ensemble has no layer of the registry's name itself)."""
    import keras

    from fer_age.modeling.ensembles import ensemble_members, ensemble_model
    from fer_age.modeling.saliency import gradcam

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 1))
    features = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="last_conv")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    classifier = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(pooled))
    images = np.random.default_rng(0).random((3, 16, 16, 1)).astype("float32")
    classes = np.array([0, 1, 0])
    ensemble = ensemble_model([classifier, classifier])

    maps = np.mean([gradcam(m, "last_conv", images, classes) for m in ensemble_members(ensemble)], axis=0)
    np.testing.assert_allclose(maps, gradcam(classifier, "last_conv", images, classes), atol=1e-6)
    assert maps.max() > 0


def test_a_soups_later_runs_start_from_the_weights_they_are_given(tmp_path, monkeypatch):
    """``fit_run`` with a shared start (a soup's first run's weights): the run starts from those weights, not from
    where its own seed would put a randomly initialised model."""
    import keras
    import mlflow
    from conftest import tiny_params

    from fer_age.loading import config_from_dict
    from fer_age.modeling.fitting import fit_run
    from fer_age.modeling.hyperparameters import Hyperparameters
    from fer_age.modeling.models import build_model

    hp = Hyperparameters.resolve(config_from_dict(tiny_params()), 1042)
    hp = dataclasses.replace(hp, epochs=1, augment=False, interpolation=())

    def initialised(seed: int) -> list[np.ndarray]:
        keras.utils.set_random_seed(seed)
        args = (hp.spec, hp.head, hp.img_size, LABELS, hp.weights, hp.fine_tune_layers, hp.freeze_batchnorm)
        return build_model(*args).get_weights()

    shared, own = initialised(42), initialised(1042)
    assert not all(np.array_equal(a, b) for a, b in zip(shared, own))  # the seeds start apart
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with mlflow.start_run():
        run = fit_run(hp, LABELS, [learnable_split(tmp_path)], AGE_GROUPS, shared)
    for started, expected in zip(run.start, shared, strict=True):
        np.testing.assert_array_equal(started, expected)


def test_each_soup_run_logs_its_epochs_in_a_nested_mlflow_run(tmp_path, monkeypatch):
    import mlflow

    from fer_age.tracking.runs import soup_run

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with mlflow.start_run() as parent:
        for seed in (42, 1042):
            with soup_run(seed, 2):
                mlflow.log_metric("val_macro_f1", seed / 2000, step=1)
        with soup_run(42, 1):  # no soup: the epochs go to the stage's own run
            mlflow.log_metric("val_macro_f1", 0.5, step=1)
    client = mlflow.MlflowClient()
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'", order_by=["start_time"]
    )
    assert [c.data.tags["soup_seed"] for c in children] == ["42", "1042"]
    assert [c.data.metrics["val_macro_f1"] for c in children] == [0.021, 0.521]
    assert client.get_run(parent.info.run_id).data.metrics["val_macro_f1"] == 0.5


def test_the_kept_model_is_said_as_its_epoch_its_soup_its_blend_or_the_start():
    """The words the console and the registry's description use for what a fit kept."""
    from fer_age.modeling.fitting import FitResult
    from fer_age.modeling.training import kept_model

    def result(**changes) -> FitResult:
        fields = dict(best_epoch=4, alpha=1.0, kept_start=False, soup_epochs=[], soup_seeds=[])
        return FitResult(None, best_metrics={}, history=None, n_train=0, n_valid=0, y_valid=None, y_pred=None,
                         **{**fields, **changes})  # fmt: skip

    assert kept_model(result(), 1) == "epoch 4"
    assert kept_model(result(alpha=0.5), 1) == "epoch 4, interpolated 0.5 of the way from the start"
    soup = kept_model(result(soup_epochs=[4, 6, 21], soup_seeds=[1042, 2042]), 3)
    assert soup == "a soup of 2 of 3 runs (seeds 1042, 2042; the runs' epochs 4, 6, 21)"
    large = kept_model(result(soup_epochs=[4, 6], soup_seeds=[1_234_567, 1_235_567], soup_alphas=[0.5, 1.0]), 2)
    expected = "seeds 1234567, 1235567; the runs' epochs 4, 6; kept 0.5, 1 of the way from the start"
    assert large == f"a soup of 2 of 2 runs ({expected})"
    start = kept_model(result(best_epoch=0, kept_start=True), 3)
    assert start == "the starting model itself (no training step or soup beat it on validation)"


def test_an_ensemble_is_saved_registered_and_served_as_one_model(tmp_path, monkeypatch, capsys):
    """The train stage's run with ``train.soup_recipe: ensemble`` on a learnable split: one model file of two
    members, said and registered as an ensemble, whose MLflow model predicts what the file predicts."""
    import cv2
    import keras
    import mlflow

    from fer_age.loading import config_from_dict
    from fer_age.modeling.ensembles import ensemble_members
    from fer_age.modeling.models import preprocessing_fn
    from fer_age.modeling.training import train_and_track
    from fer_age.registry import model_spec

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    params = tiny_params()
    params["train"].update(epochs=8, soup=2, soup_recipe="ensemble")
    split_dir = learnable_split(tmp_path)
    info = train_and_track(
        config_from_dict(params), "QUADRANTS", 42, [split_dir], tmp_path / "models", tmp_path / "history", "train"
    )

    said = capsys.readouterr().out
    assert "kept an ensemble of 2 runs (seeds 42, 1042;" in said, said
    model = keras.models.load_model(tmp_path / "models" / "QUADRANTS" / info.model_file, compile=False)
    assert [member.name for member in ensemble_members(model)] == ["member_0", "member_1"]
    client = mlflow.MlflowClient()
    (version,) = client.search_model_versions(f"name = '{Path(info.model_file).stem}'")
    assert "kept an ensemble of 2 runs" in version.description
    assert client.get_run(version.run_id).data.params["soup_recipe"] == "ensemble"
    images = np.load(split_dir / "X_valid.npy")
    served = mlflow.pyfunc.load_model(f"models:/{Path(info.model_file).stem}/1").predict(images)
    gray = np.stack([cv2.cvtColor(cv2.cvtColor(i, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB) for i in images])  # crop's
    x = preprocessing_fn(model_spec(info.model), info.preprocessing)(gray.astype(np.float32))
    columns = [f"p_{label}" for label in LABELS]
    np.testing.assert_allclose(served[columns].to_numpy(), model.predict(x, verbose=0), atol=1e-5)


def test_a_linear_probe_trains_the_head_alone_and_restores_every_layers_flag(tmp_path):
    """``head_only`` with real Keras fits: inside it only the head's weights move (the base's BatchNorm statistics
    included stay put); after it, the base trains again."""
    import keras

    from fer_age.modeling.models import build_model
    from fer_age.modeling.probing import head_layers, head_only
    from fer_age.registry import model_spec

    keras.utils.set_random_seed(0)
    classifier = build_model(model_spec("compactcnn"), "m2", 32, LABELS, "none")
    head = {layer.name for layer in head_layers(classifier)}
    assert head == {"head_pool", "head_batchnorm", "head_classes"}
    flags = {layer.name: layer.trainable for layer in classifier.layers}
    x = np.random.default_rng(0).uniform(0, 1, (16, 32, 32, 3)).astype("float32")
    y = np.eye(len(LABELS))[np.arange(16) % len(LABELS)]

    def fitted_weights() -> dict[str, list[np.ndarray]]:
        classifier.compile(keras.optimizers.Adam(1e-2), "categorical_crossentropy")
        before = {layer.name: [w.copy() for w in layer.get_weights()] for layer in classifier.layers}
        classifier.fit(x, y, epochs=1, batch_size=8, verbose=0)
        return {
            name: [not np.array_equal(a, b) for a, b in zip(weights, layer.get_weights())]
            for name, weights, layer in zip(before, before.values(), classifier.layers)
            if weights
        }

    with head_only(classifier):
        moved = fitted_weights()
    assert {name for name, changed in moved.items() if any(changed)} == head - {"head_pool"}  # the rest: no weights
    assert {layer.name: layer.trainable for layer in classifier.layers} == flags
    moved = fitted_weights()
    assert any(any(changed) for name, changed in moved.items() if name not in head)


def test_probe_epochs_come_first_and_selection_keeps_the_best_epoch_of_both_fits(tmp_path, monkeypatch):
    """``train.probe_epochs``: the probe's epochs are epochs 1..N of one history, the fine-tuning epochs go on from
    there, and the kept epoch is the best of the start and all of them (not only of the second fit)."""
    import mlflow

    from fer_age.loading import config_from_dict
    from fer_age.modeling.fitting import fit_run
    from fer_age.modeling.hyperparameters import Hyperparameters
    from fer_age.modeling.selection import selection_key

    hp = Hyperparameters.resolve(config_from_dict(tiny_params()), 42)
    hp = dataclasses.replace(hp, epochs=2, probe_epochs=2, augment=False, interpolation=())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with mlflow.start_run():
        run = fit_run(hp, LABELS, [learnable_split(tmp_path)], AGE_GROUPS)
    assert [r["epoch"] for r in run.records] == [1, 2, 3, 4]
    scores = [run.initial, *run.records]
    keys = [selection_key(s, hp.monitor, len(LABELS)) for s in scores]
    assert run.best_epoch == max(range(len(keys)), key=keys.__getitem__)
    assert run.validate()[hp.monitor] == scores[run.best_epoch][hp.monitor]  # the model holds the kept epoch
