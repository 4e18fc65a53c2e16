"""The evaluate stage in MLflow: one parent run per pipeline run holding the headline, every table and figure,
with the training runs it evaluated as its children; each training run gets its test scores under the same
metric names as every other (per test age group, own, other, gap, worst), so the compare view lines them up."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pandas as pd

from fer_age.config import Config
from fer_age.contracts import SPLITS, held_out_group
from fer_age.modeling.inference import Predictor
from fer_age.results.bootstrap import SCORES, scores

PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: the UI nests a run under its parent


def test_metrics(mine: pd.DataFrame, own_group: str, n_classes: int) -> dict[str, float]:
    """One model's test scores: ``test/<score>/<age group>`` per test age group, ``worst``; where the model has
    an age group of its own, ``own``, ``other`` (every other group's images) and ``gap`` (own - other); for a
    leave-one-out model (its group is its name, ``POOL-no-<group>``), ``unseen``."""
    metrics = {}
    per_group = {
        group: scores(part["true"].to_numpy(), part["predicted"].to_numpy(), n_classes)
        for group, part in mine.groupby("test_age_group", sort=False)
    }
    for score in SCORES:
        for group, values in per_group.items():
            metrics[metric_name(f"test/{score}/{group}")] = values[score]
        metrics[f"test/{score}/worst"] = min(values[score] for values in per_group.values())
        unseen = held_out_group(own_group)
        if unseen in per_group:  # a leave-one-out model: its score on the age group it never saw
            metrics[f"test/{score}/unseen"] = per_group[unseen][score]
    other = mine[mine["test_age_group"] != own_group]
    if own_group in per_group and len(other):
        other_scores = scores(other["true"].to_numpy(), other["predicted"].to_numpy(), n_classes)
        for score in SCORES:
            own = per_group[own_group][score]
            metrics |= {
                f"test/{score}/own": own,
                f"test/{score}/other": other_scores[score],
                f"test/{score}/gap": own - other_scores[score],
            }
    return metrics


def metric_name(name: str) -> str:
    """``name`` with the characters MLflow refuses in a metric name (``+`` of ``adult+older``) as ``_``."""
    return re.sub(r"[^\w./\- :]", "_", name)


def flatten(metrics: dict, prefix: str = "") -> dict[str, float]:
    """A nested metrics dict as MLflow metric names (``headline/gap/child/own``), numbers only."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = metric_name(f"{prefix}/{key}" if prefix else str(key))
        if isinstance(value, dict):
            flat |= flatten(value, name)
        elif isinstance(value, int | float):
            flat[name] = float(value)
    return flat


def log_to_mlflow(
    config: Config,
    experiment_id: str,
    predictors: list[Predictor],
    predictions: pd.DataFrame,
    headline: dict,
    outputs: list[Path],
) -> None:
    """The parent run with the headline and the outputs; each training run its test scores, as a child."""
    import mlflow

    from fer_age.tracking.models import add_test_scores, log_split_inputs
    from fer_age.tracking.runs import file_digest, find_training_run, run_tags, tracked_run

    children = {}
    for predictor in predictors:
        if predictor.path is None:  # the baseline: no training run
            continue
        run = find_training_run(experiment_id, predictor.info.name, file_digest(predictor.path))
        if run is None:
            print(
                f"note: no MLflow training run holds the model of {predictor.info.name}, seed {predictor.info.seed}; "
                "its test scores are logged in the evaluation run only"
            )
            continue
        children[run.info.run_id] = predictor
    tags = run_tags(stage="evaluate", name="evaluate", model=config.model, head=str(config.head))
    with tracked_run(experiment_id, f"study · {config.model} {config.head} · {len(config.seeds)} seeds", tags) as run:
        parent = run.info.run_id
        mlflow.log_params(
            {
                "model": config.model,
                "head": config.head,
                "datasets": ",".join(config.datasets),
                "seeds": ",".join(map(str, config.seeds)),
                "baselines": ",".join(config.evaluate.baselines) or "none",
                "bootstrap_samples": config.evaluate.bootstrap_samples,
                "seed": config.seed,
            }
        )
        mlflow.log_metrics(flatten(headline, "headline"))
        mlflow.set_tag("training_run_ids", ",".join(children))
        for path in outputs:
            (mlflow.log_artifacts if path.is_dir() else mlflow.log_artifact)(str(path), "results")
    client = mlflow.MlflowClient()
    now = int(time.time() * 1000)
    n_classes = len(config.labels)
    for run_id, predictor in children.items():
        info = predictor.info
        mine = predictions[(predictions["train_dataset"] == info.name) & (predictions["seed"] == info.seed)]
        metrics = test_metrics(mine, info.age_group, n_classes)
        client.log_batch(run_id, metrics=[mlflow.entities.Metric(k, v, now, 0) for k, v in metrics.items()])
        client.set_tag(run_id, PARENT_TAG, parent)
        log_split_inputs([SPLITS / name for name in config.datasets], {"test": "testing"}, run_id)
        accuracy = {k.rsplit("/", 1)[1]: v for k, v in metrics.items() if k.startswith("test/accuracy/")}
        add_test_scores(run_id, "accuracy " + ", ".join(f"{k} {v:.3f}" for k, v in accuracy.items()))


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
