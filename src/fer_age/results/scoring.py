"""Scores of predictions: the study's classification report rows, and accuracy and macro-F1 per cell with
bootstrap confidence intervals that resample test images (all of an image's predictions together)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sparse
from sklearn.metrics import accuracy_score, classification_report, f1_score

from fer_age.config import Config

PAIR_KEYS = ["model", "head", "train_dataset", "train_age_group", "baseline", "test_dataset"]
BOOTSTRAP_BUDGET = 4_000_000  # resampled image counts held at once (about 32 MB)


def study_key(display_name: str, head: str, train: str, test: str) -> str:
    """The original's row key, e.g. ``ResNet50V2_m1_CK_TestOnMUG``."""
    return f"{display_name}_{head}_{train}_TestOn{test}"


def classification_rows(predictions: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """complet_result.csv: sklearn's classification report (output_dict) per model and test dataset."""
    rows = []
    for keys, pair in predictions.groupby(PAIR_KEYS, sort=False):
        report = classification_report(
            pair["true"],
            pair["predicted"],
            labels=range(len(labels)),
            target_names=labels,
            output_dict=True,
            zero_division=0,
        )
        context = dict(zip(PAIR_KEYS, keys))
        context["test_age_group"] = "+".join(pair["test_age_group"].unique())
        key = study_key(pair["display_name"].iat[0], context["head"], context["train_dataset"], context["test_dataset"])
        flags = {"degenerate": bool(pair["degenerate"].iat[0]), "degenerate_reason": pair["degenerate_reason"].iat[0]}
        for name, values in report.items():
            if name == "accuracy":  # as sklearn's text report: the score under f1-score, n as support
                values = {"precision": np.nan, "recall": np.nan, "f1-score": values, "support": len(pair)}
            rows.append(
                {
                    "key": key,
                    **context,
                    "class": name,
                    "precision": values["precision"],
                    "recall": values["recall"],
                    "f1_score": values["f1-score"],
                    "support": int(values["support"]),
                    **flags,
                }
            )
    return pd.DataFrame(rows)


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, images: np.ndarray, n_classes: int) -> sparse.csr_matrix:
    """Per test image, how many of its predictions fall in each confusion cell (images x classes^2)."""
    n_images = int(images.max()) + 1
    cells = y_true * n_classes + y_pred
    ones = np.ones(len(cells), np.int64)
    return sparse.csr_matrix((ones, (images, cells)), shape=(n_images, n_classes * n_classes))


def scores_from_confusions(confusions: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and macro-F1 of each flattened confusion matrix (rows: resamples)."""
    cm = confusions.reshape(-1, n_classes, n_classes)
    tp = np.diagonal(cm, axis1=1, axis2=2)
    denominator = cm.sum(axis=1) + cm.sum(axis=2)  # 2TP + FP + FN
    f1 = np.divide(2 * tp, denominator, out=np.zeros(tp.shape, float), where=denominator > 0)
    total = cm.sum(axis=(1, 2))
    accuracy = np.divide(tp.sum(axis=1), total, out=np.zeros(len(cm), float), where=total > 0)
    return accuracy, f1.mean(axis=1)


def bootstrap_scores(
    y_true: np.ndarray, y_pred: np.ndarray, images: np.ndarray, n_classes: int, samples: int, level: float, seed: int
) -> dict:
    """Accuracy and macro-F1 with percentile bootstrap CIs over test images (seeded).

    ``images`` numbers the test image of each prediction: when a cell pools several models, the
    predictions of one image are resampled together, because the images, not the rows, are the
    random sample. Resamples are drawn in chunks, so memory stays flat however many rows there are.
    """
    _, images = np.unique(images, return_inverse=True)
    n_images = int(images.max()) + 1
    per_image = confusion_counts(y_true, y_pred, images, n_classes)
    rng = np.random.default_rng(seed)
    chunk = max(1, BOOTSTRAP_BUDGET // n_images)
    accuracy, macro_f1 = np.empty(samples), np.empty(samples)
    for start in range(0, samples, chunk):
        size = min(chunk, samples - start)
        drawn = rng.integers(0, n_images, size=(size, n_images))
        offsets = np.arange(size)[:, None] * n_images
        counts = np.bincount((drawn + offsets).ravel(), minlength=size * n_images).reshape(size, n_images)
        confusions = np.asarray((sparse.csr_matrix(counts) @ per_image).todense())
        accuracy[start : start + size], macro_f1[start : start + size] = scores_from_confusions(confusions, n_classes)
    low, high = (1 - level) / 2, 1 - (1 - level) / 2
    return {
        "n": int(len(y_true)),
        "n_images": n_images,
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "accuracy_ci_low": float(np.quantile(accuracy, low)),
        "accuracy_ci_high": float(np.quantile(accuracy, high)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=range(n_classes), average="macro", zero_division=0)),
        "macro_f1_ci_low": float(np.quantile(macro_f1, low)),
        "macro_f1_ci_high": float(np.quantile(macro_f1, high)),
    }


def cross_scores(
    predictions: pd.DataFrame, by: list[str], n_classes: int, samples: int, level: float, seed: int
) -> pd.DataFrame:
    """Scores per group of ``by`` columns (pooled over everything else), with image-level CIs."""
    rows = []
    for keys, group in predictions.groupby(by, sort=False):
        image = group["test_dataset"] + "/" + group["source"]
        scores = bootstrap_scores(
            group["true"].to_numpy(), group["predicted"].to_numpy(), image.to_numpy(), n_classes, samples, level, seed
        )
        flagged = sorted(group.loc[group["degenerate"], "train_dataset"].unique())
        rows.append(
            {
                **dict(zip(by, keys)),
                **scores,
                "n_models": group["train_dataset"].nunique(),
                "baseline": bool(group["baseline"].iat[0]),
                "degenerate_models": ";".join(flagged),
            }
        )
    return pd.DataFrame(rows)


def ordered(table: pd.DataFrame, columns: list[str], order: list[str]) -> pd.DataFrame:
    """Rows sorted by ``columns`` in the given order of names (unknown names last, as they come)."""
    rank = {name: i for i, name in enumerate(order)}
    return table.sort_values(columns, key=lambda s: s.map(lambda v: rank.get(v, len(rank))), kind="stable").reset_index(
        drop=True
    )


def headline(cross_age: pd.DataFrame, age_groups: list[str]) -> pd.DataFrame:
    """Own-group vs other-group accuracy per training age group (the study's headline).

    Only single age groups count (not pooled models or baselines); groups tested only on their own
    age group, or never on it, are left out.
    """
    rows = []
    for group in age_groups:
        part = cross_age[cross_age["train_age_group"] == group]
        own = part[part["test_age_group"] == group]
        other = part[part["test_age_group"] != group]
        if own.empty or other.empty:  # no statement without both sides
            continue
        rows.append(
            {
                "train_age_group": group,
                "own_group_accuracy": float(own["accuracy"].iat[0]),
                "own_group_ci_low": float(own["accuracy_ci_low"].iat[0]),
                "own_group_ci_high": float(own["accuracy_ci_high"].iat[0]),
                "other_group_accuracy": float(np.average(other["accuracy"], weights=other["n"])),
                "other_group_ci_high": float(other["accuracy_ci_high"].max()),
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "train_age_group",
            "own_group_accuracy",
            "own_group_ci_low",
            "own_group_ci_high",
            "other_group_accuracy",
            "other_group_ci_high",
        ],
    )


def score_tables(predictions: pd.DataFrame, config: Config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cross-age table (train x test age group) and the cross-dataset table, with image-level CIs."""
    e = config.evaluate
    args = (len(config.labels), e.bootstrap_samples, e.confidence_level, config.seed)
    train_order = list(dict.fromkeys([*config.age_groups, *predictions["train_age_group"]]))
    cross_age = cross_scores(predictions, ["train_age_group", "test_age_group"], *args)
    cross_age = ordered(ordered(cross_age, ["test_age_group"], config.age_groups), ["train_age_group"], train_order)
    cross_dataset = cross_scores(predictions, ["train_dataset", "test_dataset", "train_age_group"], *args)
    return cross_age, cross_dataset
