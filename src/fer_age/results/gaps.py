"""The study's answer: how much accuracy a model loses between age groups, with intervals that hold together.

For a model trained on one age group, the gap is its score on its own group's test images minus its score on
every other group's (pooled). For the off-the-shelf baseline and for models trained on several age groups
(pooled models, mixed-age datasets), which have no one own group, it is the difference between each pair of
test age groups. Each gap gets a two-level bootstrap interval (test images and seeds), and the intervals are
simultaneous: Bonferroni-adjusted over the comparisons (the same family for each score), so that all of them
hold together at the stated level. A verdict names a gap only where its interval excludes zero.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from sklearn.metrics import recall_score

from fer_age.results.bootstrap import SCORES, interval, replicate_scores, spread

OTHER = "other"
GAP_COLUMNS = [
    "kind",
    "train_age_group",
    "first",
    "second",
    "score",
    "first_value",
    "second_value",
    "gap",
    "gap_sd",
    "gap_ci_low",
    "gap_ci_high",
    "simultaneous_level",
    "comparisons",
    "verdict",
    "n_seeds",
    "first_images",
    "second_images",
]


def comparisons(predictions: pd.DataFrame, age_groups: list[str]) -> list[tuple[str, str, str, str]]:
    """(kind, training group, first test group, second test group) of every gap the study reports."""
    found = []
    tested = predictions.groupby("train_age_group", sort=False)["test_age_group"].unique()
    for group in age_groups:  # models of one age group: own against the others
        if group in tested and group in tested[group] and len(tested[group]) > 1:
            found.append(("own_vs_other", group, group, OTHER))
    for name, groups in tested.items():  # the baseline and mixed-age models: each pair of test age groups
        if name in age_groups:
            continue
        kind = "baseline" if predictions.loc[predictions["train_age_group"] == name, "baseline"].iat[0] else "mixed_age"
        present = [g for g in age_groups if g in set(groups)]
        found += [(kind, str(name), a, b) for a, b in combinations(present, 2)]
    return found


def verdict(first: str, second: str, low: float, high: float) -> str:
    """Plain words for an interval of first - second."""
    if low > 0:
        return f"{first} higher"
    if high < 0:
        return f"{second} higher"
    return "no clear difference"


def gap_table(
    predictions: pd.DataFrame, age_groups: list[str], n_classes: int, samples: int, level: float, seed: int
) -> pd.DataFrame:
    """One row per gap and score (columns ``GAP_COLUMNS``): both sides, the gap (mean over seeds), its SD over
    seeds, its simultaneous interval and the verdict."""
    found = comparisons(predictions, age_groups)
    simultaneous = 1 - (1 - level) / max(len(found), 1)
    rows = []
    for kind, trained_on, first, second in found:
        part = predictions[predictions["train_age_group"] == trained_on]
        second_rows = part["test_age_group"] != first if second == OTHER else part["test_age_group"] == second
        a = replicate_scores(part[part["test_age_group"] == first], n_classes, samples, seed)
        b = replicate_scores(part[second_rows], n_classes, samples, seed, stream=1)  # other images: own stream
        for score in SCORES:
            per_seed = a.per_seed[score] - b.per_seed[score]
            low, high = interval(a.replicates[score] - b.replicates[score], simultaneous)
            rows.append(
                {
                    "kind": kind,
                    "train_age_group": trained_on,
                    "first": first,
                    "second": second,
                    "score": score,
                    "first_value": a.point(score),
                    "second_value": b.point(score),
                    "gap": float(per_seed.mean()),
                    "gap_sd": spread(per_seed),
                    "gap_ci_low": low,
                    "gap_ci_high": high,
                    "simultaneous_level": simultaneous,
                    "comparisons": len(found),
                    "verdict": verdict(first, second, low, high),
                    "n_seeds": len(a.seeds),
                    "first_images": a.n_images,
                    "second_images": b.n_images,
                }
            )
    return pd.DataFrame(rows, columns=GAP_COLUMNS)  # with its columns when there is no gap to report


def recall_table(predictions: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """Recall of each emotion per training group x test age group: mean and SD over seeds, and support."""
    rows = []
    for (trained_on, tested_on), cell in predictions.groupby(["train_age_group", "test_age_group"], sort=False):
        per_seed = np.array(
            [
                recall_score(g["true"], g["predicted"], labels=range(len(labels)), average=None, zero_division=0)
                for _, g in cell.groupby("seed")
            ]
        )
        support = np.bincount(cell.loc[cell["seed"] == cell["seed"].iat[0], "true"], minlength=len(labels))
        for i, emotion in enumerate(labels):
            rows.append(
                {
                    "train_age_group": trained_on,
                    "test_age_group": tested_on,
                    "emotion": emotion,
                    "recall": float(per_seed[:, i].mean()),
                    "recall_sd": spread(per_seed[:, i]),
                    "support": int(support[i]),
                    "n_seeds": len(per_seed),
                }
            )
    return pd.DataFrame(rows)
