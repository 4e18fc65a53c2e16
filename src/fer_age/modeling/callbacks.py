"""The fit loop's callbacks: per-epoch validation scores into the logs and MLflow, and the best epoch kept."""

from __future__ import annotations

from collections.abc import Callable

from fer_age.modeling.hyperparameters import Hyperparameters
from fer_age.modeling.selection import is_kept


def selection_callbacks(
    hp: Hyperparameters,
    records: list[dict],
    initial: dict[str, float],
    n_classes: int,
    group_scores: Callable[[], dict[str, float]],
):
    """The fit loop's callbacks: EMA swap (``train.ema_epochs``), worst-group scores, the best-epoch keeper
    (returned first), early stopping and learning-rate decay on ``hp.monitor``."""
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
            if hasattr(self, "best_weights"):  # a second fit (after train.probe_epochs' probe) goes on from the first
                return
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
