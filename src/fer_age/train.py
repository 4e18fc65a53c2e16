"""Train stage: fine-tune the selected registry model on one dataset, tracked in MLflow."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score
from sklearn.utils.class_weight import compute_class_weight

from fer_age.config import Config
from fer_age.models import model_filename, model_spec

TRAINING_INFO = "training.json"


@dataclass
class TrainingInfo:
    """What the evaluate stage needs to know about a trained model."""

    dataset: str
    age_group: str
    model: str
    head: str
    model_file: str
    preprocessing: str
    epochs_run: int
    seconds: float
    run_id: str
    degenerate: str  # empty when the model learned, else why it is flagged


def resolved_hyperparameters(config: Config) -> dict:
    """Training settings with the model's own defaults filled in where params say null."""
    spec = model_spec(config.model)
    t = config.train
    preprocessing = "rescale" if spec.preprocess_module is None else t.preprocessing
    return {
        "model": config.model, "head": config.head, "img_size": config.img_size,
        "epochs": t.epochs or spec.epochs, "learning_rate": t.learning_rate or spec.learning_rate,
        "batch_size": t.batch_size or spec.batch_size, "weights": t.weights if spec.pretrained else "none",
        "preprocessing": preprocessing,
        "fine_tune_layers": t.fine_tune_layers if t.fine_tune_layers is not None else spec.fine_tune_layers,
        "seed": config.seed, "augment": t.augment, "class_weights": t.class_weights,
        "mixed_precision": t.mixed_precision,
    }


def degenerate_reason(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> str:
    """Why a model's validation predictions show it learned nothing, or '' if they do not."""
    if len(np.unique(y_pred)) == 1:
        return f"predicts only '{labels[int(y_pred[0])]}' on the validation split"
    macro_f1 = f1_score(y_true, y_pred, labels=range(len(labels)), average="macro", zero_division=0)
    if macro_f1 <= 1 / len(labels):
        return f"validation macro-F1 {macro_f1:.2f} is no better than chance ({1 / len(labels):.2f})"
    return ""


def _seed_everything(seed: int) -> None:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _epoch_logger(records: list[dict]):
    import keras
    import mlflow

    class EpochLogger(keras.callbacks.Callback):
        """Logs loss, accuracy, val_loss, val_accuracy and lr to MLflow every epoch."""

        def on_epoch_end(self, epoch, logs=None):
            row = {k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"}
            row["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            mlflow.log_metrics(row, step=epoch)
            records.append({"epoch": epoch + 1, **row})

    return EpochLogger()


def fit(config: Config, split_dir: Path, records: list[dict]):
    """Build, compile and fit the model; returns it with the validation arrays."""
    import keras
    import tensorflow as tf

    from fer_age.data import load_split, make_dataset
    from fer_age.models import build_model, preprocessing_fn

    hp = resolved_hyperparameters(config)
    t = config.train
    _seed_everything(config.seed)
    if t.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    x_train, y_train = load_split(split_dir, "train")
    x_valid, y_valid = load_split(split_dir, "valid")
    preprocess = preprocessing_fn(config.model, hp["preprocessing"])
    train_ds = make_dataset(x_train, y_train, hp["batch_size"], preprocess, training=True, augment=t.augment,
                            seed=config.seed)
    valid_ds = make_dataset(x_valid, y_valid, hp["batch_size"], preprocess)
    gpus = tf.config.list_physical_devices("GPU")
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    with strategy.scope():
        model = build_model(config.model, config.head, config.img_size, len(config.labels), hp["weights"],
                            hp["fine_tune_layers"])
        model.compile(optimizer=keras.optimizers.Adam(hp["learning_rate"], beta_1=0.9, beta_2=0.999),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    class_weight = None
    if t.class_weights:
        present = np.unique(y_train)
        weights = compute_class_weight("balanced", classes=present, y=y_train)
        class_weight = {int(c): float(w) for c, w in zip(present, weights)}
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_accuracy", min_delta=5e-5, patience=t.early_stopping_patience,
                                      restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_accuracy", factor=t.reduce_lr_factor,
                                          patience=t.reduce_lr_patience, min_lr=t.min_learning_rate),
        _epoch_logger(records),
    ]
    model.fit(train_ds, validation_data=valid_ds, epochs=hp["epochs"], class_weight=class_weight,
              callbacks=callbacks, verbose=2)
    y_pred = model.predict(valid_ds, verbose=0).argmax(axis=1)
    return model, (len(y_train), len(y_valid)), y_valid, y_pred


def run_train(config: Config, name: str, split_dir: Path, out_dir: Path, history_dir: Path) -> TrainingInfo:
    """The train stage: fit, save the .h5 model, history and figure, log all to MLflow."""
    import mlflow

    from fer_age.plots import plot_history
    from fer_age.tracking import run_tags, setup_experiment

    dataset = config.dataset(name)
    experiment_id = setup_experiment(config.train.experiment)  # fails before training if unreachable
    hp = resolved_hyperparameters(config)
    spec = model_spec(config.model)
    tags = run_tags(dataset=name, age_group=dataset.age_group, model=config.model, head=config.head,
                    stage="train")
    records: list[dict] = []
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{spec.display_name}_{config.head}_{name}",
                          tags=tags) as run:
        mlflow.log_params({**hp, "dataset": name, "age_group": dataset.age_group})
        started = time.perf_counter()
        model, (n_train, n_valid), y_valid, y_pred = fit(config, split_dir, records)
        seconds = time.perf_counter() - started
        mlflow.log_params({"n_train": n_train, "n_valid": n_valid})
        model_path = out_dir / model_filename(config.model, config.head, name)
        model.save(model_path)
        history = pd.DataFrame(records)
        history_dir.mkdir(parents=True, exist_ok=True)
        history.to_csv(history_dir / f"{name}.csv", index=False)
        figure = out_dir / "history.png"
        plot_history(history, f"{spec.display_name} {config.head} on {name}", figure)
        reason = degenerate_reason(y_valid, y_pred, config.labels)
        mlflow.set_tag("degenerate", reason or "false")
        if reason:
            print(f"WARNING: the {spec.display_name} model trained on {name} is degenerate: {reason}. "
                  "Its evaluation rows will be flagged.")
        mlflow.log_metric("train_seconds", seconds)
        mlflow.log_artifact(str(model_path), "model")
        mlflow.log_artifact(str(figure), "figures")
        info = TrainingInfo(name, dataset.age_group, config.model, config.head, model_path.name,
                            hp["preprocessing"], len(records), round(seconds, 2), run.info.run_id, reason)
    (out_dir / TRAINING_INFO).write_text(json.dumps(asdict(info), indent=2) + "\n")
    print(f"train {name}: {len(records)} epochs in {seconds:.1f} s "
          f"({n_train * len(records) / seconds:.0f} img/s), run {info.run_id}")
    return info
