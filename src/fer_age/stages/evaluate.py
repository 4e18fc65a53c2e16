"""Evaluate stage: every trained model (and the baseline) on every dataset's test split, with CIs and reports."""

from __future__ import annotations

import argparse
import json

import pandas as pd

from fer_age.config import Config
from fer_age.contracts import (
    AGE_GAPS,
    BASELINE_GAINS,
    COMPLET_RESULT,
    CROSS_AGE,
    CROSS_DATASET,
    FIGURES,
    METRICS,
    PREDICTIONS,
    RECALL_BY_EMOTION,
    REPORT,
    RESULTS,
    SPLITS,
    fresh_dir,
)
from fer_age.modeling.inference import baseline_predictor, load_test_splits, predict_all, trained_models
from fer_age.results.combined import own_and_pooled_rows
from fer_age.results.figures import write_figures
from fer_age.results.gains import baseline_gain_table
from fer_age.results.gaps import gap_table, recall_table
from fer_age.results.reporting import metrics_dict, report_markdown
from fer_age.results.scoring import classification_rows, score_tables
from fer_age.tracking.evaluation import log_to_mlflow


def main(config: Config, args: argparse.Namespace) -> None:
    """``fer-age evaluate``: predictions, complet_result.csv, cross-age CSVs, metrics, figures, report."""
    from fer_age.tracking.runs import connect

    datasets = list(config.datasets)
    predictors = trained_models(datasets, config.seeds)
    tests = load_test_splits(datasets, SPLITS)
    if "fer2013" in config.evaluate.baselines:
        baseline = baseline_predictor(config.labels, config.img_size)
        predictors += [baseline] if baseline else []
    experiment_id = connect(config.tracking.experiment)  # an unreachable store fails before the work
    all_predictions = predict_all(predictors, tests, config.labels, SPLITS, config.evaluate.flip_average)
    if config.evaluate.own_and_pooled:
        combined = own_and_pooled_rows(all_predictions, config.labels)
        all_predictions = pd.concat([all_predictions, combined], ignore_index=True)
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
    e = config.evaluate
    bootstrap = (len(config.labels), e.bootstrap_samples, e.confidence_level, config.seed)
    gaps = gap_table(predictions, config.age_groups, *bootstrap)
    gains = baseline_gain_table(predictions, config.age_groups, *bootstrap)
    recall = recall_table(predictions, config.labels)
    RESULTS.mkdir(parents=True, exist_ok=True)
    tables = {
        PREDICTIONS: all_predictions.drop(columns="display_name"),
        COMPLET_RESULT: classification_rows(predictions, config.labels),
        CROSS_AGE: cross_age,
        CROSS_DATASET: cross_dataset,
        AGE_GAPS: gaps,
        BASELINE_GAINS: gains,
        RECALL_BY_EMOTION: recall,
    }
    for filename, frame in tables.items():
        frame.to_csv(RESULTS / filename, index=False, float_format="%.6g")
    headline = metrics_dict(gaps, cross_age, len(config.seeds), gains)
    (RESULTS / METRICS).write_text(json.dumps(headline, indent=2) + "\n")
    names = sorted({f"{p.info.name}: {p.info.model} {p.info.head}" for p in predictors})
    flagged = [
        f"- {p.info.model} {p.info.head} trained on {p.info.name}, seed {p.info.seed}: degenerate "
        f"({p.info.degenerate}); its rows are flagged in the CSVs."
        for p in predictors
        if p.info.degenerate
    ]
    report = report_markdown(cross_age, gaps, names, flagged, e.confidence_level, gains)
    (RESULTS / REPORT).write_text(report)
    write_figures(predictions, cross_age, cross_dataset, recall, tests, config, fresh_dir(RESULTS, FIGURES.name))
    outputs = [RESULTS / f for f in (*tables, METRICS, REPORT)] + [FIGURES]
    log_to_mlflow(config, experiment_id, predictors, predictions, headline, outputs)
    print(report)
