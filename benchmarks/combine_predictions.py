"""Ensembles of a study's saved test predictions: how many runs, and which models, to average.

Usage:
    python benchmarks/combine_predictions.py WORK [WORK ...] --labels Happy Neutral [--sizes 1 3 5]

Reads ``WORK/predictions/<seed>-<method>.csv`` as ``benchmarks/pooled_methods.py --training-seeds K`` keeps them
(K >= the largest size) and prints, per age group, test macro-F1 mean ± SD over split seeds (per split in
brackets), the worst group and the gap, for: the off-the-shelf model; the own-group models and the pooled model,
one run (the mean over the K runs) and ensembles of the first n runs (class probabilities averaged per test
image); an ensemble of both (own-group and pooled runs alike); and each ensemble averaged with the off-the-shelf
model. Every model here is scored on the same test images; nothing is trained.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from pooled_methods import macro_f1, probabilities, summary_row

POOLED = "POOL-all"


def first_runs(trained: pd.DataFrame, size: int) -> pd.DataFrame:
    """The rows of the first ``size`` training seeds (in the order the soup seeds run: the split's seed first)."""
    seeds = sorted(trained["seed"].astype(int).unique())[:size]
    return trained[trained["seed"].astype(int).isin(seeds)]


def split_scores(predictions: pd.DataFrame, labels: list[str], sizes: list[int]) -> dict[str, dict[str, float]]:
    """Every row's scores on one split: model name -> age group -> test macro-F1."""
    columns = [f"p_{label}" for label in labels]
    frame = predictions[~predictions["seen_in_training"]]
    baseline = probabilities(frame[frame["baseline"]], columns)
    trained = frame[~frame["baseline"]]
    own = trained[trained["train_age_group"] == trained["test_age_group"]]
    pooled = trained[trained["train_age_group"] == POOLED]
    rows = {"off the shelf": macro_f1(baseline, len(labels))}
    for name, models in (("own age group", own), ("pooled", pooled)):
        singles = [
            macro_f1(probabilities(models[models["seed"] == s], columns), len(labels)) for s in models["seed"].unique()
        ]
        rows[f"{name}, one run (mean of {len(singles)})"] = {
            g: float(np.mean([s[g] for s in singles])) for g in singles[0]
        }
    for size in sizes:
        own_probs = probabilities(first_runs(own, size), columns)
        pooled_probs = probabilities(first_runs(pooled, size), columns)
        both = (own_probs + pooled_probs) / 2
        for name, probs in (("own age group", own_probs), ("pooled", pooled_probs), ("own and pooled", both)):
            rows[f"{name}, ensemble of {size}"] = macro_f1(probs, len(labels))
            rows[f"{name}, ensemble of {size}, with the off-the-shelf model"] = macro_f1(
                (probs + baseline) / 2, len(labels)
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", nargs="+", type=Path, help="work folders of benchmarks/pooled_methods.py")
    parser.add_argument("--labels", nargs="+", required=True)
    parser.add_argument("--sizes", nargs="+", type=int, default=[3, 5])
    args = parser.parse_args()
    files = sorted(path for work in args.work for path in (work / "predictions").glob("*.csv"))
    rows: dict[str, list[dict[str, float]]] = {}
    for path in files:
        for name, scores in split_scores(pd.read_csv(path), args.labels, args.sizes).items():
            rows.setdefault(name, []).append(scores)
    print(f"{len(files)} splits: {', '.join(path.stem for path in files)}")
    groups = list(rows["off the shelf"][0])
    print(f"\n| models | {' | '.join(groups)} | worst group | gap |")
    print("|---|" + "---|" * (len(groups) + 2))
    for name, per_split in rows.items():
        print(summary_row(name, per_split))


if __name__ == "__main__":
    main()
