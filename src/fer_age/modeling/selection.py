"""Model selection on validation: the metric the study reports (macro-F1 as sklearn computes it), degenerate
models never kept over ones that learned, and weight-space blends with the start (WiSE-FT)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import accuracy_score, f1_score


def degenerate_reason(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> str:
    """Why a model's validation predictions show it learned nothing, or '' if they do not."""
    if len(np.unique(y_pred)) == 1:
        return f"predicts only '{labels[int(y_pred[0])]}' on the validation split"
    macro_f1 = f1_score(y_true, y_pred, labels=range(len(labels)), average="macro", zero_division=0)
    if is_degenerate_score(macro_f1, len(labels)):
        return f"validation macro-F1 {macro_f1:.2f} is no better than chance ({1 / len(labels):.2f})"
    return ""


def is_degenerate_score(macro_f1: float, n_classes: int) -> bool:
    """Whether a validation macro-F1 is no better than chance (``1 / n_classes``), as a constant model scores."""
    return macro_f1 <= 1 / n_classes


def selection_key(metrics: dict[str, float], monitor: str, n_classes: int) -> tuple[bool, float]:
    """What model selection maximises: a non-degenerate model first, then the monitored score.

    A degenerate epoch (validation macro-F1 at or below chance) is never kept over a non-degenerate one,
    whatever ``monitor`` says.
    """
    return not is_degenerate_score(metrics["val_macro_f1"], n_classes), metrics[monitor]


def is_better(
    candidate: dict[str, float], best: dict[str, float], monitor: str, n_classes: int, margin: float = 0.0
) -> bool:
    """Whether ``candidate`` beats ``best`` by :func:`selection_key` (by more than ``margin``, at least 5e-5, on
    the same footing)."""
    (ok, score), (best_ok, best_score) = (selection_key(m, monitor, n_classes) for m in (candidate, best))
    return ok > best_ok or (ok == best_ok and score > best_score + max(margin, 5e-5))


def is_kept(
    candidate: dict[str, float],
    best: dict[str, float],
    start: dict[str, float] | None,
    monitor: str,
    n_classes: int,
    start_margin: float,
) -> bool:
    """Whether ``candidate`` replaces ``best``: it beats it, and beats the starting model (when given) by
    ``start_margin`` (where the start is a trained classifier, leaving it must earn more than validation noise)."""
    beats_start = start is None or is_better(candidate, start, monitor, n_classes, start_margin)
    return is_better(candidate, best, monitor, n_classes) and beats_start


def argmax_macro_f1(n_classes: int):
    """Validation macro-F1 exactly as sklearn computes it on arg-max labels.

    Keras' ``F1Score`` marks every tied class as predicted, so a model that outputs the same probability
    for every class gets credit for all of them (0.40 with four classes, where sklearn says 0.10).
    Arg-max first (ties go to the first class, as in ``numpy.argmax``), then Keras' counting.
    """
    import keras

    class ArgmaxMacroF1(keras.metrics.F1Score):
        def update_state(self, y_true, y_pred, sample_weight=None):
            labels = keras.ops.argmax(y_pred, axis=-1)
            super().update_state(y_true, keras.ops.one_hot(labels, n_classes, dtype=self.dtype), sample_weight)

    return ArgmaxMacroF1(average="macro", name="macro_f1")


WORST_GROUP = "val_worst_group_"  # prefix of the worst age group's validation scores


def worst_group_monitor(monitor: str) -> str:
    """The name of the worst age group's validation score for ``monitor`` (``val_macro_f1`` ->
    ``val_worst_group_macro_f1``)."""
    return WORST_GROUP + monitor.removeprefix("val_")


def worst_group_scores(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, n_classes: int) -> dict[str, float]:
    """The lowest accuracy and macro-F1 (as the study reports them) over the age groups in ``groups``:
    ``val_worst_group_accuracy`` and ``val_worst_group_macro_f1`` (GroupDRO's selection, Sagawa et al. 2020)."""
    members = [groups == group for group in np.unique(groups)]
    return {
        f"{WORST_GROUP}accuracy": min(float(accuracy_score(y_true[m], y_pred[m])) for m in members),
        f"{WORST_GROUP}macro_f1": min(
            float(f1_score(y_true[m], y_pred[m], labels=range(n_classes), average="macro", zero_division=0))
            for m in members
        ),
    }


def interpolate(start: list[np.ndarray], fitted: list[np.ndarray], alpha: float) -> list[np.ndarray]:
    """Weights ``(1 - alpha) * start + alpha * fitted`` (floating-point arrays only; others stay fitted)."""
    return [
        (1 - alpha) * s + alpha * f if np.issubdtype(f.dtype, np.floating) else f
        for s, f in zip(start, fitted, strict=True)
    ]


SOUP_SEED_STEP = 1000  # a soup's runs: training seeds seed, seed + 1000, ... (apart from the study's seeds 42-44)


def soup_seeds(seed: int, size: int) -> list[int]:
    """The training seeds of a soup of ``size`` runs for training seed ``seed`` (``[seed]`` without a soup)."""
    return [seed + SOUP_SEED_STEP * k for k in range(size)]


def average_weights(runs: list[list[np.ndarray]]) -> list[np.ndarray]:
    """The uniform average of several runs' weights (a model soup, Wortsman et al. 2022); arrays that are not
    floating point (counters) are the last run's."""
    return [
        np.mean(arrays, axis=0).astype(arrays[-1].dtype) if np.issubdtype(arrays[-1].dtype, np.floating) else arrays[-1]
        for arrays in zip(*runs, strict=True)
    ]


def choose_interpolation(
    model,
    start: list[np.ndarray],
    validate: Callable[[], dict[str, float]],
    monitor: str,
    alphas: tuple[float, ...],
    fitted_metrics: dict[str, float],
    n_classes: int,
    start_metrics: dict[str, float] | None = None,
    start_margin: float = 0.0,
) -> tuple[float, dict[str, float], dict[float, float]]:
    """Weight-space ensembling of the starting and the fitted classifier (WiSE-FT, Wortsman et al. 2022).

    Each ``alpha`` is scored by ``validate`` (the model's validation metrics as it is now); the model keeps the
    best one by :func:`selection_key`, the fitted model (alpha 1) unless another scores higher and beats
    ``start_metrics`` by ``start_margin``. Returns the alpha kept, its validation metrics and every alpha's score.
    """
    if not alphas:
        return 1.0, fitted_metrics, {}
    fitted = model.get_weights()
    best_alpha, best, tried = 1.0, fitted_metrics, {1.0: fitted_metrics[monitor]}
    for alpha in sorted(alphas, reverse=True):
        model.set_weights(interpolate(start, fitted, alpha))
        scores = validate()
        tried[alpha] = scores[monitor]
        if is_kept(scores, best, start_metrics, monitor, n_classes, start_margin):
            best_alpha, best = alpha, scores
    model.set_weights(interpolate(start, fitted, best_alpha))
    return best_alpha, best, tried
