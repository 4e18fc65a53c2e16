"""Model fitting shared by the train and pool stages: the fit loop with validation-based model selection (epoch 0
counts), the optional soup or ensemble of runs from one start, and the blend with the start."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fer_age.modeling.callbacks import selection_callbacks
from fer_age.modeling.hyperparameters import Hyperparameters
from fer_age.modeling.objectives import (
    GROUP_LOSSES,
    MixupPartners,
    balanced_class_weights,
    classifier_features,
    ema_momentum,
    example_weights,
    group_indices,
    training_model,
)
from fer_age.modeling.selection import (
    WORST_GROUP,
    argmax_macro_f1,
    average_weights,
    choose_interpolation,
    is_better,
    is_kept,
    selection_key,
    soup_seeds,
    worst_group_scores,
)

if TYPE_CHECKING:
    import keras


@dataclass
class FitResult:
    """A fitted model with the epoch kept and its validation metrics."""

    model: keras.Model  # the classifier, without the on-device input it was fitted behind
    best_epoch: int  # 0 = the start was kept; with a soup: the epoch of its best run on validation
    best_metrics: dict[str, float]
    alpha: float  # fraction of the fitted weights kept, against the starting ones (1 = the fitted model)
    history: pd.DataFrame  # the run's epochs (with a soup: those of its best run on validation)
    n_train: int
    n_valid: int
    y_valid: np.ndarray
    y_pred: np.ndarray
    kept_start: bool  # the starting model itself was kept: no training step, soup or blend beat it on validation
    soup_epochs: list[int]  # each soup run's kept epoch ([] without a soup)
    soup_seeds: list[int]  # the training seeds of the runs in the soup ([] without a soup)
    soup_alphas: list[float] = field(default_factory=list)  # an ensemble's runs' blends with the start (0: the start)
    ensemble: bool = False  # the model is an ensemble of the runs (their class probabilities averaged), not a soup


@dataclass
class Run:
    """One fine-tuning run from the start: the model behind its device input, with the best epoch's weights."""

    model: keras.Model
    classifier: keras.Model
    validate: Callable[[], dict[str, float]]
    valid_probabilities: Callable[[], np.ndarray]  # the validation images' class probabilities
    y_valid: np.ndarray
    valid_groups: np.ndarray | None  # each validation image's age group, where selection reads the worst group
    start: list[np.ndarray]  # the weights before training
    initial: dict[str, float]  # the start's validation metrics
    best_epoch: int
    best: dict[str, float]
    records: list[dict]
    n_train: int
    n_classes: int
    seed: int


def fit_run(
    hp: Hyperparameters,
    labels: list[str],
    split_dirs: list[Path],
    age_groups: list[str],
    shared_start: list[np.ndarray] | None = None,
) -> Run:
    """Build, compile and fit the model with training seed ``hp.seed`` (from the weights ``shared_start`` where given);
    keep the best validation epoch (epoch 0 included)."""
    import keras
    import mlflow
    import tensorflow as tf

    from fer_age.modeling.inputs import load_splits, make_dataset, with_device_input
    from fer_age.modeling.models import build_model, preprocessing_fn
    from fer_age.modeling.probing import head_only

    keras.utils.set_random_seed(hp.seed)
    tf.config.experimental.enable_op_determinism()
    if hp.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    n_classes = len(labels)
    x_train, y_train = load_splits(split_dirs, "train")
    x_valid, y_valid = load_splits(split_dirs, "valid")
    class_weights = balanced_class_weights(y_train, n_classes) if hp.class_weights else None
    groups = group_indices(split_dirs, age_groups, "train")
    # selection on the worst age group: each validation image's group (pooled models, pool.selection worst_group)
    valid_groups = group_indices(split_dirs, age_groups, "valid") if hp.monitor.startswith(WORST_GROUP) else None
    n_groups = int(groups.max()) + 1 if len(groups) and hp.method in GROUP_LOSSES else 0
    weights = example_weights(y_train, groups, class_weights, hp.method)
    mixup = MixupPartners(groups, hp.mixup_alpha, hp.seed) if hp.method == "mixup" else None
    # raw uint8 batches: augmentation and preprocessing run on the device, in the model being fitted
    train_ds = make_dataset(
        x_train, y_train, hp.batch_size, None, n_classes, True, hp.seed, sample_weights=weights, mixup=mixup
    )
    valid_ds = make_dataset(x_valid, y_valid, hp.batch_size, None, n_classes)
    momentum = ema_momentum(hp.ema_epochs, len(y_train), hp.batch_size)  # train.ema_epochs in optimizer steps
    gpus = tf.config.list_physical_devices("GPU")
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    with strategy.scope():
        classifier = build_model(
            hp.spec, hp.head, hp.img_size, labels, hp.weights, hp.fine_tune_layers, hp.freeze_batchnorm
        )
        preprocess = preprocessing_fn(hp.spec, hp.preprocessing)
        model = with_device_input(classifier, preprocess, hp.seed, hp.augment, hp.rotation, hp.zoom)
        # CORAL's features: the classifier's, behind a device input of their own (another augmented draw)
        features = None
        if hp.coral_weight:
            features = with_device_input(
                classifier_features(classifier), preprocess, hp.seed + 1, hp.augment, hp.rotation, hp.zoom
            )
        model = training_model(
            model, hp.l2_sp, n_groups, hp.dro_step, class_weights, hp.label_smoothing, hp.coral_weight, features
        )

    def compile_model() -> None:  # a fresh optimizer; the layers' trainable flags count from here
        with strategy.scope():
            model.compile(
                optimizer=keras.optimizers.Adam(hp.learning_rate, use_ema=hp.ema_epochs > 0, ema_momentum=momentum),
                loss=keras.losses.CategoricalCrossentropy(label_smoothing=hp.label_smoothing),
                metrics=["accuracy", argmax_macro_f1(n_classes)],
            )

    compile_model()
    if shared_start is not None:
        model.set_weights(shared_start)  # a soup's runs share one start (a random head's initialisation included)

    def valid_probabilities() -> np.ndarray:
        return model.predict(valid_ds, verbose=0)

    def group_scores() -> dict[str, float]:
        if valid_groups is None:
            return {}
        return worst_group_scores(y_valid, valid_probabilities().argmax(axis=1), valid_groups, n_classes)

    def validate() -> dict[str, float]:
        scores = model.evaluate(valid_ds, verbose=0, return_dict=True)
        return {**{f"val_{k}": float(v) for k, v in scores.items()}, **group_scores()}

    initial = validate()
    mlflow.log_metrics(initial, step=0)
    records: list[dict] = []
    best, callbacks = selection_callbacks(hp, records, initial, n_classes, group_scores)
    start = model.get_weights()
    fit_args = {"validation_data": valid_ds, "callbacks": callbacks, "verbose": 2, "shuffle": False}
    if hp.probe_epochs:  # LP-FT: the head alone first (epochs 1..probe_epochs); fine-tuning goes on from the best
        with head_only(classifier):
            compile_model()
            model.fit(train_ds, epochs=hp.probe_epochs, **fit_args)
        compile_model()
    model.fit(train_ds, initial_epoch=hp.probe_epochs, epochs=hp.probe_epochs + hp.epochs, **fit_args)
    return Run(
        model, classifier, validate, valid_probabilities, y_valid, valid_groups, start, initial, best.best_epoch,
        best.best, records, len(y_train), n_classes, hp.seed,
    )  # fmt: skip


def fit(hp: Hyperparameters, labels: list[str], split_dirs: list[Path], age_groups: list[str]) -> FitResult:
    """Fine-tune ``hp.soup`` runs from one start (a single run without a soup) and average their weights, those that
    help on validation or all (a greedy or uniform model soup, Wortsman et al. 2022), then blend with the start as
    validation says (WiSE-FT); or keep each run as a single run would be kept and ensemble them. The start itself is
    kept where nothing beats it on validation."""
    from fer_age.tracking.runs import soup_run

    ensemble = hp.soup > 1 and hp.soup_recipe == "ensemble"
    runs: list[Run] = []
    members: list[FitResult] = []
    for seed in soup_seeds(hp.seed, hp.soup):
        with soup_run(seed, hp.soup):  # without a soup, nothing: the epochs go to the stage's run
            shared_start = runs[0].start if runs else None
            runs.append(fit_run(replace(hp, seed=seed), labels, split_dirs, age_groups, shared_start))
            if ensemble:  # each run's own epoch, blend or start, logged in its nested run
                members.append(combine_runs(runs[-1:], hp))
    return ensemble_runs(runs, members, hp) if ensemble else combine_runs(runs, hp)


def ensemble_runs(runs: list[Run], members: list[FitResult], hp: Hyperparameters) -> FitResult:
    """A deep ensemble (Lakshminarayanan et al. 2017) of ``runs``, each as ``members`` says it was kept on validation
    (its best epoch, its blend with the start, or the start): one model averaging their class probabilities. Where
    every run kept the start, the start itself."""
    from fer_age.modeling.ensembles import ensemble_model, validation_scores

    epochs, seeds = [m.best_epoch for m in members], sorted(run.seed for run in runs)
    alphas = [0.0 if m.kept_start else m.alpha for m in members]
    if all(m.kept_start for m in members):
        return replace(members[0], soup_epochs=epochs, soup_seeds=seeds, soup_alphas=alphas, ensemble=True)
    first, n_classes = runs[0], runs[0].n_classes
    probabilities = np.mean([run.valid_probabilities() for run in runs], axis=0)  # each run as it was kept
    scores = validation_scores(first.y_valid, probabilities, first.valid_groups, n_classes)
    leading = max(members, key=lambda m: selection_key(m.best_metrics, hp.monitor, n_classes))  # ties: the first
    return FitResult(
        ensemble_model([m.model for m in members]),
        leading.best_epoch,
        scores,
        1.0,
        leading.history,
        first.n_train,
        len(first.y_valid),
        first.y_valid,
        probabilities.argmax(axis=1),
        False,
        epochs,
        seeds,
        alphas,
        ensemble=True,
    )


def soup_runs(runs: list[Run], hp: Hyperparameters) -> tuple[list[Run], dict[str, float]]:
    """The runs a model soup averages (Wortsman et al. 2022), best on validation first, and the average's validation
    scores; the last run's model then holds the average.

    ``uniform``: every run. ``greedy``: the run that scores highest on validation, then each other run in order of
    its score, added where the average with it scores no lower than without it.
    """
    vessel, n_classes = runs[-1], runs[-1].n_classes
    weights = {r.seed: r.model.get_weights() for r in runs}  # each run's best epoch, before the vessel is reused
    ranked = sorted(runs, key=lambda r: selection_key(r.best, hp.monitor, n_classes), reverse=True)  # ties: seeds
    if hp.soup_recipe == "uniform":
        vessel.model.set_weights(average_weights(list(weights.values())))
        return ranked, vessel.validate()
    soup, soup_metrics = ranked[:1], ranked[0].best
    for run in ranked[1:]:
        vessel.model.set_weights(average_weights([weights[r.seed] for r in [*soup, run]]))
        scores = vessel.validate()
        if not is_better(soup_metrics, scores, hp.monitor, n_classes):
            soup, soup_metrics = [*soup, run], scores
    vessel.model.set_weights(average_weights([weights[r.seed] for r in soup]))
    return soup, soup_metrics


def combine_runs(runs: list[Run], hp: Hyperparameters) -> FitResult:
    """The model kept from a fit's runs: the single run's best epoch, or their soup (``train.soup_recipe``) where it
    beats the start on validation (else the start); then its best blend with the start (WiSE-FT)."""
    import mlflow

    run = runs[-1]  # its model holds the result
    n_classes, soup = run.n_classes, len(runs) > 1
    fitted, moved, kept_runs = run.best, run.best_epoch > 0, runs
    if soup:
        kept_runs, fitted = soup_runs(runs, hp)
        moved = is_kept(fitted, run.initial, run.initial, hp.monitor, n_classes, hp.start_margin)
        if not moved:
            run.model.set_weights(run.start)
            fitted = run.initial
    alpha, best_metrics, tried = choose_interpolation(
        run.model,
        run.start,
        run.validate,
        hp.monitor,
        hp.interpolation if moved else (),  # blends of the start with itself: nothing
        fitted,
        n_classes,
        run.initial,
        hp.start_margin,
    )
    for tried_alpha, score in tried.items():
        mlflow.log_metric(f"interpolated_{hp.monitor}", score, step=round(tried_alpha * 100))
    leading = kept_runs[0]  # the single run, or the soup's best on validation
    return FitResult(
        run.classifier,
        leading.best_epoch if moved and alpha > 0 else 0,
        best_metrics,
        alpha,
        pd.DataFrame(leading.records),
        run.n_train,
        len(run.y_valid),
        run.y_valid,
        run.valid_probabilities().argmax(axis=1),
        not moved or alpha == 0,
        [r.best_epoch for r in runs] if soup else [],
        sorted(r.seed for r in kept_runs) if soup else [],
    )
