"""The two-level bootstrap behind every interval of the evaluation: test images and training seeds resampled
together.

A score varies with the test images drawn and with the training seed, so each bootstrap replicate draws the
test images with replacement (all predictions of one image together, whichever models made them) and the
seeds with replacement, and scores the replicate as the mean over the drawn seeds. With one seed this is the
image bootstrap alone. Replicates are drawn in chunks, so memory stays flat however many images there are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sparse
from sklearn.metrics import accuracy_score, f1_score

BOOTSTRAP_BUDGET = 4_000_000  # resampled image counts held at once (about 32 MB)
SEED_STREAM = 1  # the seed draws come from their own stream: adding seeds leaves the image draws as they were
SCORES = ("accuracy", "macro_f1")


@dataclass
class Replicates:
    """A cell's scores: per seed, their mean (the point estimate) and the bootstrap replicates of that mean."""

    seeds: list[int]
    per_seed: dict[str, np.ndarray]  # score -> one value per seed
    replicates: dict[str, np.ndarray]  # score -> one value per replicate
    n: int  # predictions
    n_images: int

    def point(self, score: str) -> float:
        return float(self.per_seed[score].mean())

    def sd(self, score: str) -> float:
        return spread(self.per_seed[score])


def spread(per_seed: np.ndarray) -> float:
    """The SD over seeds (NaN with one seed)."""
    return float(per_seed.std(ddof=1)) if len(per_seed) > 1 else float("nan")


def scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict[str, float]:
    """Accuracy and macro-F1 (every label of the study counts, absent ones score 0) of one model's predictions."""
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=range(n_classes), average="macro", zero_division=0)),
    }


def confusion_counts(
    y_true: np.ndarray, y_pred: np.ndarray, images: np.ndarray, n_classes: int, n_images: int
) -> sparse.csr_matrix:
    """Per test image, how many of its predictions fall in each confusion cell (images x classes^2)."""
    cells = y_true * n_classes + y_pred
    ones = np.ones(len(cells), np.int64)
    return sparse.csr_matrix((ones, (images, cells)), shape=(n_images, n_classes * n_classes))


def scores_from_confusions(confusions: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and macro-F1 (sklearn's, zero_division=0) of each flattened confusion matrix (rows: resamples)."""
    cm = confusions.reshape(-1, n_classes, n_classes)
    tp = np.diagonal(cm, axis1=1, axis2=2)
    denominator = cm.sum(axis=1) + cm.sum(axis=2)  # 2TP + FP + FN
    f1 = np.divide(2 * tp, denominator, out=np.zeros(tp.shape, float), where=denominator > 0)
    total = cm.sum(axis=(1, 2))
    accuracy = np.divide(tp.sum(axis=1), total, out=np.zeros(len(cm), float), where=total > 0)
    return accuracy, f1.mean(axis=1)


def seed_weights(n_seeds: int, samples: int, seed: int) -> np.ndarray:
    """Per replicate, the weight of each seed: how often it was drawn (with replacement), over ``n_seeds``."""
    if n_seeds == 1:
        return np.ones((samples, 1))
    rng = np.random.default_rng([seed, SEED_STREAM])
    return rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=samples) / n_seeds


def image_ids(frame: pd.DataFrame) -> np.ndarray:
    """One id per distinct test image (dataset and source)."""
    return (frame["test_dataset"] + "/" + frame["source"]).to_numpy()


def replicate_scores(frame: pd.DataFrame, n_classes: int, samples: int, seed: int, stream: int = 0) -> Replicates:
    """The scores of the predictions in ``frame`` (columns true, predicted, seed, test_dataset, source), per seed
    and as bootstrap replicates of their mean over seeds.

    Image draws come from ``default_rng(seed)`` (``stream`` > 0: an independent stream, for a second group of
    images compared with the first); seed draws from :func:`seed_weights`, so two cells scored by the same seeds
    share them (a paired comparison)."""
    seeds = sorted(frame["seed"].unique().tolist())
    _, images = np.unique(image_ids(frame), return_inverse=True)
    n_images = int(images.max()) + 1
    per_image, per_seed = [], {score: np.empty(len(seeds)) for score in SCORES}
    for i, s in enumerate(seeds):
        rows = (frame["seed"] == s).to_numpy()
        y_true, y_pred = frame["true"].to_numpy()[rows], frame["predicted"].to_numpy()[rows]
        per_image.append(confusion_counts(y_true, y_pred, images[rows], n_classes, n_images))
        for score, value in scores(y_true, y_pred, n_classes).items():
            per_seed[score][i] = value
    weights = seed_weights(len(seeds), samples, seed)
    rng = np.random.default_rng(seed if stream == 0 else [seed, SEED_STREAM + stream])
    replicates = {score: np.zeros(samples) for score in SCORES}
    chunk = max(1, BOOTSTRAP_BUDGET // n_images)
    for start in range(0, samples, chunk):
        size = min(chunk, samples - start)
        drawn = rng.integers(0, n_images, size=(size, n_images))
        offsets = np.arange(size)[:, None] * n_images
        counts = sparse.csr_matrix(
            np.bincount((drawn + offsets).ravel(), minlength=size * n_images).reshape(size, n_images)
        )
        for i, matrix in enumerate(per_image):
            accuracy, macro_f1 = scores_from_confusions(np.asarray((counts @ matrix).todense()), n_classes)
            replicates["accuracy"][start : start + size] += weights[start : start + size, i] * accuracy
            replicates["macro_f1"][start : start + size] += weights[start : start + size, i] * macro_f1
    return Replicates(seeds, per_seed, replicates, len(frame), n_images)


def interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """The percentile interval of bootstrap replicates."""
    low, high = np.quantile(values, ((1 - level) / 2, (1 + level) / 2))
    return float(low), float(high)


def cell_scores(frame: pd.DataFrame, n_classes: int, samples: int, level: float, seed: int) -> dict:
    """Accuracy and macro-F1 of a cell: mean over seeds, SD over seeds and the two-level bootstrap CI."""
    cell = replicate_scores(frame, n_classes, samples, seed)
    row: dict = {"n": cell.n, "n_images": cell.n_images, "n_seeds": len(cell.seeds)}
    for score in SCORES:
        low, high = interval(cell.replicates[score], level)
        row |= {
            score: cell.point(score),
            f"{score}_sd": cell.sd(score),
            f"{score}_ci_low": low,
            f"{score}_ci_high": high,
        }
    return row
