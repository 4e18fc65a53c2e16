"""Scores of predictions: the study's classification report rows, and accuracy and macro-F1 per cell (mean
over seeds, SD over seeds) with two-level bootstrap intervals (test images and seeds, :mod:`bootstrap`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import classification_report

from fer_age.config import Config
from fer_age.results.bootstrap import cell_scores

PAIR_KEYS = ["model", "head", "train_dataset", "train_age_group", "baseline", "seed", "test_dataset"]


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


def cross_scores(
    predictions: pd.DataFrame, by: list[str], n_classes: int, samples: int, level: float, seed: int
) -> pd.DataFrame:
    """Scores per group of ``by`` columns (pooled over the models of a seed, averaged over seeds)."""
    rows = []
    for keys, group in predictions.groupby(by, sort=False):
        scores = cell_scores(group, n_classes, samples, level, seed)
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


def score_tables(predictions: pd.DataFrame, config: Config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cross-age table (train x test age group) and the cross-dataset table, with image-level CIs."""
    e = config.evaluate
    args = (len(config.labels), e.bootstrap_samples, e.confidence_level, config.seed)
    train_order = list(dict.fromkeys([*config.age_groups, *predictions["train_age_group"]]))
    cross_age = cross_scores(predictions, ["train_age_group", "test_age_group"], *args)
    cross_age = ordered(ordered(cross_age, ["test_age_group"], config.age_groups), ["train_age_group"], train_order)
    cross_dataset = cross_scores(predictions, ["train_dataset", "test_dataset", "train_age_group"], *args)
    return cross_age, cross_dataset
