"""The evaluate stage's figures: cross-age heatmap, recall per emotion and age group, confusion matrices and a
gallery of misclassified faces (these two of the first seed's models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix

from fer_age.config import Config
from fer_age.modeling.inference import BASELINE_NAME
from fer_age.registry import model_spec
from fer_age.results.reporting import with_ci


def write_figures(
    predictions: pd.DataFrame,
    cross_age: pd.DataFrame,
    cross_dataset: pd.DataFrame,
    recall: pd.DataFrame,
    tests: dict,
    config: Config,
    figures: Path,
) -> None:
    """Cross-age and cross-dataset heatmaps, confusion-matrix grid, misclassified gallery of every model."""
    from fer_age.results.plots import (
        plot_confusion_grid,
        plot_gallery,
        plot_heatmap,
        plot_recall_by_emotion,
        wrapped,
    )

    seeds = f"{len(config.seeds)} seed{'s' if len(config.seeds) > 1 else ''}"
    model = f"{model_spec(config.model).display_name} {config.head}"
    for table, rows, cols, name, axes in (
        (
            cross_age,
            "train_age_group",
            "test_age_group",
            "cross_age_accuracy",
            ("training age group", "test age group"),
        ),
        (
            cross_dataset,
            "train_dataset",
            "test_dataset",
            "cross_dataset_accuracy",
            ("training dataset", "test dataset"),
        ),
    ):
        order = {"index": table[rows].unique(), "columns": table[cols].unique()}  # the table's, not alphabetical
        matrix = table.pivot(index=rows, columns=cols, values="accuracy").reindex(**order)
        notes = (
            table.assign(text=with_ci(table, "accuracy", 2, "\n"))
            .pivot(index=rows, columns=cols, values="text")
            .reindex(**order)
        )
        flagged = (
            table.assign(flag=table["degenerate_models"].fillna("").astype(str) != "")
            .pivot(index=rows, columns=cols, values="flag")
            .reindex(**order)
        )
        title = f"{model}: test accuracy, mean over {seeds} ({config.evaluate.confidence_level:.0%} interval)"
        if BASELINE_NAME in matrix.index:
            title += f"\nrow {BASELINE_NAME}: the off-the-shelf model, not trained here"
        plot_heatmap(matrix, title, figures / f"{name}.png", notes, axes, flagged)
    plot_recall_by_emotion(recall, figures / "recall_by_emotion.png")
    predictions = predictions[predictions["seed"].isin([config.seeds[0], -1])]  # -1: the baseline (not trained)
    matrices = {
        f"train {tr} / test {te}": confusion_matrix(g["true"], g["predicted"], labels=range(len(config.labels)))
        for (tr, te), g in predictions.groupby(["train_dataset", "test_dataset"], sort=False)
    }
    plot_confusion_grid(matrices, config.labels, figures / "confusion_matrices.png")
    wrong = predictions[predictions["true"] != predictions["predicted"]]
    per_model = max(1, config.evaluate.gallery_size // max(predictions["train_dataset"].nunique(), 1))
    shown = wrong.groupby("train_dataset", sort=False).head(per_model).head(config.evaluate.gallery_size)
    images, captions = [], []
    for row in shown.itertuples():
        test = tests[row.test_dataset]
        images.append(np.asarray(test.images[test.sources.index(row.source)]))
        captions.append(
            f"{row.train_dataset} on {row.test_dataset}\n{row.true_label} → {row.predicted_label}\n"
            + wrapped(Path(row.source).name)
        )
    plot_gallery(images, captions, figures / "misclassified.png")
