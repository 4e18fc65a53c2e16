"""The evaluate stage in MLflow: one run with every table and figure, and each training run's test scores under
the DVC metric names."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

from fer_age.config import Config
from fer_age.contracts import (
    SPLITS,
)
from fer_age.modeling.inference import (
    Predictor,
)


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

    from fer_age.tracking.models import log_split_inputs
    from fer_age.tracking.runs import file_digest, find_training_run, run_tags, tracked_run

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


def log_figures(predictor: Predictor, figures: list[Path], experiment_id: str) -> None:
    """Attach the figures to the MLflow run that trained the model (when the store has it)."""
    from mlflow import MlflowClient

    from fer_age.tracking.runs import file_digest, find_training_run, tracking_uri

    if predictor.path is None:  # the baseline: no training run
        return
    run = find_training_run(experiment_id, predictor.info.name, file_digest(predictor.path))
    if run is not None:
        for figure in figures:
            MlflowClient(tracking_uri()).log_artifact(run.info.run_id, str(figure), "explain")
