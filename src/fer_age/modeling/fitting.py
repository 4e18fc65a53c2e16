"""Model fitting shared by the train and pool stages: hyperparameters resolved once, the fit loop with
validation-based model selection (epoch 0 counts), the degenerate-model guard, and the tracked run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fer_age.config import Config
from fer_age.contracts import HISTORY_FIGURE, TrainingInfo, fresh_dir, read_manifest
from fer_age.modeling.hyperparameters import Hyperparameters
from fer_age.modeling.objectives import (
    age_group_label,
    balanced_class_weights,
    ema_momentum,
    example_weights,
    group_indices,
    training_model,
)
from fer_age.modeling.selection import (
    WORST_GROUP,
    argmax_macro_f1,
    choose_interpolation,
    degenerate_reason,
    is_kept,
    worst_group_scores,
)
from fer_age.registry import model_filename

if TYPE_CHECKING:
    import keras


@dataclass
class FitResult:
    """A fitted model with the epoch kept and its validation metrics."""

    model: keras.Model  # the classifier, without the on-device input it was fitted behind
    best_epoch: int  # 0 = the model before any training step
    best_metrics: dict[str, float]
    alpha: float  # fraction of the fitted weights kept, against the starting ones (1 = the fitted model)
    history: pd.DataFrame
    n_train: int
    n_valid: int
    y_valid: np.ndarray
    y_pred: np.ndarray


def _callbacks(
    hp: Hyperparameters,
    records: list[dict],
    initial: dict[str, float],
    n_classes: int,
    group_scores: Callable[[], dict[str, float]],
):
    import keras
    import mlflow

    monitor = hp.monitor

    class GroupScores(keras.callbacks.Callback):
        """Adds the worst age group's validation scores to the epoch's logs, before the callbacks that read them."""

        def on_epoch_end(self, epoch, logs=None):
            logs.update(group_scores())  # fit passes the dict every later callback reads

    class BestEpoch(keras.callbacks.Callback):
        """Keeps the weights of the best epoch by :func:`selection_key`, the untrained model (epoch 0) included."""

        def on_train_begin(self, logs=None):
            self.start = dict(initial)
            self.best_epoch, self.best = 0, dict(self.start)
            self.best_weights = self.model.get_weights()

        def on_epoch_end(self, epoch, logs=None):
            row = {k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"}
            row["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            mlflow.log_metrics(row, step=epoch + 1)
            records.append({"epoch": epoch + 1, **row})
            if is_kept(row, self.best, self.start, monitor, n_classes, hp.start_margin):
                self.best_epoch, self.best = epoch + 1, {k: v for k, v in row.items() if k.startswith("val_")}
                self.best_weights = self.model.get_weights()

        def on_train_end(self, logs=None):
            self.model.set_weights(self.best_weights)

    swap = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if hp.ema_epochs else []  # seen by all after it
    best = BestEpoch()
    return best, [
        *swap,
        GroupScores(),
        best,
        keras.callbacks.EarlyStopping(monitor=monitor, mode="max", min_delta=5e-5, patience=hp.early_stopping_patience),
        keras.callbacks.ReduceLROnPlateau(
            monitor=monitor,
            mode="max",
            factor=hp.reduce_lr_factor,
            patience=hp.reduce_lr_patience,
            min_lr=hp.min_learning_rate,
        ),
    ]


def fit(hp: Hyperparameters, labels: list[str], split_dirs: list[Path], age_groups: list[str]) -> FitResult:
    """Build, compile and fit the model; keep the best validation epoch (epoch 0 included)."""
    import keras
    import mlflow
    import tensorflow as tf

    from fer_age.modeling.inputs import load_splits, make_dataset, with_device_input
    from fer_age.modeling.models import build_model, preprocessing_fn

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
    n_groups = int(groups.max()) + 1 if len(groups) and hp.method == "groupdro" else 0
    weights = example_weights(y_train, groups, class_weights, hp.method)
    # raw uint8 batches: augmentation and preprocessing run on the device, in the model being fitted
    train_ds = make_dataset(
        x_train, y_train, hp.batch_size, None, n_classes, training=True, seed=hp.seed, sample_weights=weights
    )
    valid_ds = make_dataset(x_valid, y_valid, hp.batch_size, None, n_classes)
    momentum = ema_momentum(hp.ema_epochs, len(y_train), hp.batch_size)  # train.ema_epochs in optimizer steps
    gpus = tf.config.list_physical_devices("GPU")
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    with strategy.scope():
        classifier = build_model(
            hp.spec, hp.head, hp.img_size, labels, hp.weights, hp.fine_tune_layers, hp.freeze_batchnorm
        )
        model = with_device_input(
            classifier, preprocessing_fn(hp.spec, hp.preprocessing), hp.seed, hp.augment, hp.rotation, hp.zoom
        )
        model = training_model(model, hp.l2_sp, n_groups, hp.dro_step, class_weights, hp.label_smoothing)
        model.compile(
            optimizer=keras.optimizers.Adam(hp.learning_rate, use_ema=hp.ema_epochs > 0, ema_momentum=momentum),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=hp.label_smoothing),
            metrics=["accuracy", argmax_macro_f1(n_classes)],
        )

    def group_scores() -> dict[str, float]:
        if valid_groups is None:
            return {}
        y_pred = model.predict(valid_ds, verbose=0).argmax(axis=1)
        return worst_group_scores(y_valid, y_pred, valid_groups, n_classes)

    def validate() -> dict[str, float]:
        scores = model.evaluate(valid_ds, verbose=0, return_dict=True)
        return {**{f"val_{k}": float(v) for k, v in scores.items()}, **group_scores()}

    initial = validate()
    mlflow.log_metrics(initial, step=0)
    records: list[dict] = []
    best, callbacks = _callbacks(hp, records, initial, n_classes, group_scores)
    start = model.get_weights() if hp.interpolation else []  # a copy of the weights only where it is used
    model.fit(train_ds, validation_data=valid_ds, epochs=hp.epochs, callbacks=callbacks, verbose=2, shuffle=False)
    interpolation = hp.interpolation if best.best_epoch > 0 else ()  # blends of the start with itself: nothing
    alpha, best_metrics, tried = choose_interpolation(
        model, start, validate, hp.monitor, interpolation, best.best, n_classes, best.start, hp.start_margin
    )
    for tried_alpha, score in tried.items():
        mlflow.log_metric(f"interpolated_{hp.monitor}", score, step=round(tried_alpha * 100))
    y_pred = model.predict(valid_ds, verbose=0).argmax(axis=1)
    return FitResult(
        classifier,
        best.best_epoch,
        best_metrics,
        alpha,
        pd.DataFrame(records),
        len(y_train),
        len(y_valid),
        y_valid,
        y_pred,
    )


def train_and_track(
    config: Config,
    name: str,
    seed: int,
    split_dirs: list[Path],
    models_base: Path,
    history_dir: Path,
    stage: str,
    pooled: bool = False,
) -> TrainingInfo:
    """Validate inputs, reach the store and start the run, then clear ``models_base/name`` and train into it
    with training seed ``seed``; ``pooled``: a mixed-age model, trained and selected as ``pool`` says.

    The per-epoch history goes to ``history_dir/<name>.csv``.
    """
    import mlflow

    from fer_age.modeling.inputs import load_splits
    from fer_age.results.plots import plot_history
    from fer_age.tracking.models import describe_version, log_model, log_split_inputs, serving_config
    from fer_age.tracking.runs import connect, file_digest, run_tags, tracked_run

    hp = Hyperparameters.resolve(config, seed, pooled)
    spec = hp.spec
    manifests = [read_manifest(d) for d in split_dirs]  # inputs first: a missing split fails before any work
    for split in ("train", "valid"):
        load_splits(split_dirs, split)
    age_group = name if len(split_dirs) > 1 else age_group_label(manifests, config.age_groups)
    datasets = [d.name for d in split_dirs]
    experiment_id = connect(config.tracking.experiment)
    tags = run_tags(
        stage=stage,
        name=name,
        dataset=",".join(datasets),
        age_group=age_group,
        model=hp.model,
        head=hp.head,
        seed=str(seed),
    )
    with tracked_run(experiment_id, f"{name} · {spec.display_name} {hp.head} · seed {seed}", tags):
        out_dir = fresh_dir(models_base, name)
        mlflow.log_params({**hp.params(), "datasets": ",".join(datasets), "age_group": age_group})
        result = fit(hp, list(config.labels), split_dirs, list(config.age_groups))
        mlflow.log_params({"n_train": result.n_train, "n_valid": result.n_valid})
        model_path = out_dir / model_filename(hp.model, hp.head, name)
        result.model.save(model_path)
        history_dir.mkdir(parents=True, exist_ok=True)
        result.history.to_csv(history_dir / f"{name}.csv", index=False)
        figure = out_dir / HISTORY_FIGURE
        plot_history(result.history, f"{spec.display_name} {hp.head} on {name}", figure, result.best_epoch, hp.monitor)
        reason = degenerate_reason(result.y_valid, result.y_pred, config.labels)
        if reason:
            print(
                f"WARNING: the {spec.display_name} model trained on {name} is degenerate: {reason}. "
                "Its evaluation rows will be flagged."
            )
        info = TrainingInfo(
            name,
            datasets,
            age_group,
            hp.model,
            hp.head,
            model_path.name,
            hp.preprocessing,
            hp.img_size,
            list(config.labels),
            len(result.history),
            result.best_epoch,
            reason,
            {k: round(v, 6) for k, v in result.best_metrics.items()},
            seed,
        )
        info.save(out_dir)
        best_metrics = {f"best_{k}": v for k, v in result.best_metrics.items()}
        mlflow.log_metrics({"best_epoch": result.best_epoch, "interpolation_alpha": result.alpha, **best_metrics})
        mlflow.log_artifact(str(figure), "figures")
        log_split_inputs(split_dirs, {"train": "training", "valid": "validation"})
        version = log_model(
            model_path,
            model_path.stem,
            serving_config(info, config.crop.grayscale, config.crop.min_face),
            np.asarray(load_splits(split_dirs, "valid")[0][:2]),
        )
        score = result.best_metrics[hp.monitor]
        kept_start = result.best_epoch == 0 or result.alpha == 0
        summary = (
            f"{spec.display_name} {hp.head} ({hp.weights} weights) trained on {', '.join(datasets)} ({age_group}), "
            f"seed {seed}; kept epoch {result.best_epoch}, {hp.monitor} {score:.3f}"
            + (f"; degenerate: {reason}" if reason else "")
            + "."
        )
        champion = describe_version(model_path.stem, version, summary, score, bool(reason), seed)
        mlflow.set_tags(
            {
                "degenerate": reason or "false",
                "kept_start": str(kept_start).lower(),
                "model_sha256": file_digest(model_path),
                "registered_model": f"{model_path.stem} version {version}" + (" (champion)" if champion else ""),
            }
        )
    best = result.best_metrics
    kept = f"epoch {result.best_epoch}" + (
        f", interpolated {result.alpha:g} of the way from the start" if result.alpha < 1 else ""
    )
    if kept_start:
        kept = "the starting model itself (no training step beat it on validation)"
    print(
        f"train {name}: {len(result.history)} epochs, kept {kept} (val accuracy "
        f"{best['val_accuracy']:.3f}, macro-F1 {best['val_macro_f1']:.3f}); registered {model_path.stem} "
        f"version {version}"
    )
    return info
