"""Evaluate stage: every trained model (and the baseline) on every dataset's test split, with CIs and reports."""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from fer_age.config import Config
from fer_age.contracts import (
    COMPLET_RESULT,
    CROSS_AGE,
    CROSS_DATASET,
    FIGURES,
    METRICS,
    MODELS,
    PREDICTIONS,
    REPORT,
    RESULTS,
    SPLITS,
    fresh_dir,
)
from fer_age.modeling.inference import Predictor, baseline_predictor, load_test_splits, predict_all, trained_models
from fer_age.results.reporting import metrics_dict, report_markdown, with_ci
from fer_age.results.scoring import classification_rows, cross_scores, headline, ordered


def score_tables(predictions: pd.DataFrame, config: Config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cross-age table (train x test age group) and the cross-dataset table, with image-level CIs."""
    e = config.evaluate
    args = (len(config.labels), e.bootstrap_samples, e.confidence_level, config.seed)
    train_order = list(dict.fromkeys([*config.age_groups, *predictions["train_age_group"]]))
    cross_age = cross_scores(predictions, ["train_age_group", "test_age_group"], *args)
    cross_age = ordered(ordered(cross_age, ["test_age_group"], config.age_groups), ["train_age_group"], train_order)
    cross_dataset = cross_scores(predictions, ["train_dataset", "test_dataset", "train_age_group"], *args)
    return cross_age, cross_dataset


def write_figures(
    predictions: pd.DataFrame,
    cross_age: pd.DataFrame,
    cross_dataset: pd.DataFrame,
    tests: dict,
    config: Config,
    figures: Path,
) -> None:
    """Cross-age and cross-dataset heatmaps, confusion-matrix grid, misclassified gallery of every model."""
    from fer_age.results.plots import plot_confusion_grid, plot_gallery, plot_heatmap

    level = f"accuracy ({config.evaluate.confidence_level:.0%} CI)"
    for table, rows, cols, name in (
        (cross_age, "train_age_group", "test_age_group", "cross_age_accuracy"),
        (cross_dataset, "train_dataset", "test_dataset", "cross_dataset_accuracy"),
    ):
        order = {"index": table[rows].unique(), "columns": table[cols].unique()}  # the table's, not alphabetical
        matrix = table.pivot(index=rows, columns=cols, values="accuracy").reindex(**order)
        notes = (
            table.assign(text=with_ci(table, "accuracy", 2, "\n"))
            .pivot(index=rows, columns=cols, values="text")
            .reindex(**order)
        )
        plot_heatmap(matrix, level, figures / f"{name}.png", notes)
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
            f"{Path(row.source).name[:28]}"
        )
    plot_gallery(images, captions, figures / "misclassified.png")


def metric_name(*parts: str) -> str:
    """A metric name MLflow accepts, from the DVC metric's path."""
    return re.sub(r"[^\w./\- :]", "_", ".".join(parts))


def log_to_mlflow(
    config: Config,
    experiment_id: str,
    predictors: list[Predictor],
    predictions: pd.DataFrame,
    cross_age: pd.DataFrame,
    outputs: list[Path],
) -> None:
    """One evaluation run with every cell and the outputs; each training run gets its own test scores."""
    import mlflow

    from fer_age.tracking.runs import (
        file_digest,
        find_training_run,
        log_split_inputs,
        run_tags,
        tracked_run,
    )

    now = int(time.time() * 1000)
    run_ids = {}
    for predictor in predictors:
        if predictor.path is None:  # the baseline: no training run
            continue
        run = find_training_run(experiment_id, predictor.info.name, file_digest(predictor.path))
        if run is None:
            print(
                f"note: no MLflow training run holds the model of {predictor.info.name}; its test scores are "
                "logged in the evaluation run only"
            )
            continue
        run_ids[predictor.info.name] = run.info.run_id
        log_split_inputs([SPLITS / name for name in config.datasets], {"test": "testing"}, run.info.run_id)
        mine = predictions[predictions["train_dataset"] == predictor.info.name]
        scores = {}
        for by in ("test_dataset", "test_age_group"):
            for value, group in mine.groupby(by):
                cell = (
                    f"{predictor.info.age_group}_on_{value}"
                    if by == "test_age_group"
                    else f"{predictor.info.name}_on_{value}"
                )
                table = "cross_age" if by == "test_age_group" else "cross_dataset"
                scores[metric_name(table, cell, "accuracy")] = accuracy_score(group["true"], group["predicted"])
                scores[metric_name(table, cell, "macro_f1")] = f1_score(
                    group["true"],
                    group["predicted"],
                    labels=range(len(config.labels)),
                    average="macro",
                    zero_division=0,
                )
        mlflow.MlflowClient().log_batch(
            run.info.run_id, metrics=[mlflow.entities.Metric(k, float(v), now, 0) for k, v in scores.items()]
        )
    tags = run_tags(
        stage="evaluate",
        name="evaluate",
        model=config.model,
        head=config.head,
        training_run_ids=",".join(run_ids.values()),
    )
    with tracked_run(experiment_id, f"evaluate · {config.model} {config.head}", tags):
        mlflow.log_params(
            {
                "model": config.model,
                "head": config.head,
                "datasets": ",".join(config.datasets),
                "baselines": ",".join(config.evaluate.baselines) or "none",
                "bootstrap_samples": config.evaluate.bootstrap_samples,
                "seed": config.seed,
            }
        )
        mlflow.log_metrics(
            {
                metric_name("cross_age", f"{r.train_age_group}_on_{r.test_age_group}", score): float(getattr(r, score))
                for r in cross_age.itertuples()
                for score in ("accuracy", "macro_f1")
            }
        )
        for path in outputs:
            (mlflow.log_artifacts if path.is_dir() else mlflow.log_artifact)(str(path), "results")


def main(config: Config, args: argparse.Namespace) -> None:
    """``fer-age evaluate``: predictions, complet_result.csv, cross-age CSVs, metrics, figures, report."""
    from fer_age.tracking.runs import connect

    datasets = list(config.datasets)
    predictors = trained_models(datasets, MODELS)
    tests = load_test_splits(datasets, SPLITS)
    if "fer2013" in config.evaluate.baselines:
        baseline = baseline_predictor(config.labels, config.img_size)
        predictors += [baseline] if baseline else []
    experiment_id = connect(config.tracking.experiment)  # an unreachable store fails before the work
    all_predictions = predict_all(predictors, tests, config.labels, SPLITS)
    leaked = all_predictions[all_predictions["seen_in_training"]]
    if len(leaked):  # the same image in two datasets: left out of the scores of models that trained on it
        pairs = leaked.groupby(["train_dataset", "test_dataset"]).size()
        print(
            f"note: {len(leaked)} test predictions left out of the scores: the model saw the same image in "
            "training through another dataset ("
            + ", ".join(f"{t} on {d}: {n}" for (t, d), n in pairs.items())
            + "); predictions.csv marks them seen_in_training"
        )
    predictions = all_predictions[~all_predictions["seen_in_training"]]
    cross_age, cross_dataset = score_tables(predictions, config)
    heads = headline(cross_age, config.age_groups)
    RESULTS.mkdir(parents=True, exist_ok=True)
    tables = {
        PREDICTIONS: all_predictions.drop(columns="display_name"),
        COMPLET_RESULT: classification_rows(predictions, config.labels),
        CROSS_AGE: cross_age,
        CROSS_DATASET: cross_dataset,
    }
    for filename, frame in tables.items():
        frame.to_csv(RESULTS / filename, index=False, float_format="%.6g")
    (RESULTS / METRICS).write_text(json.dumps(metrics_dict(cross_age, heads), indent=2) + "\n")
    names = sorted({f"{p.info.name}: {p.info.model} {p.info.head}" for p in predictors})
    flagged = [
        f"- {p.info.model} {p.info.head} trained on {p.info.name}: degenerate ({p.info.degenerate}); its "
        "rows are flagged in the CSVs."
        for p in predictors
        if p.info.degenerate
    ]
    report = report_markdown(cross_age, heads, names, flagged, config.evaluate.confidence_level, config.age_groups)
    (RESULTS / REPORT).write_text(report)
    write_figures(predictions, cross_age, cross_dataset, tests, config, fresh_dir(RESULTS, FIGURES.name))
    log_to_mlflow(
        config,
        experiment_id,
        predictors,
        predictions,
        cross_age,
        [RESULTS / f for f in (*tables, METRICS, REPORT)] + [FIGURES],
    )
    print(report)
