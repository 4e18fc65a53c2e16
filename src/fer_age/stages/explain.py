"""Explain stage: Grad-CAM maps of every trained model on a seeded selection of test images per test age
group and emotion, the share of saliency on the upper vs lower face, figures and a report section."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from fer_age.config import Config
from fer_age.contracts import EXPLAIN, MODELS, RESULTS, SPLITS, fresh_dir
from fer_age.modeling.inference import Predictor, SplitImages, load_keras_model, load_test_splits, trained_models
from fer_age.modeling.saliency import bootstrap_difference, gradcam, share_table, target_layer, upper_face_share
from fer_age.registry import model_spec

SALIENCY = "saliency.csv"
SECTION = "report.md"


def select_images(tests: dict[str, SplitImages], per_cell: int, seed: int) -> pd.DataFrame:
    """Up to ``per_cell`` test images per test age group and label, drawn with ``seed``; the same for every model."""
    pool = pd.concat(
        [
            pd.DataFrame(
                {
                    "test_dataset": name,
                    "index": np.arange(len(t.labels)),
                    "label": t.labels,
                    "test_age_group": t.age_groups,
                    "source": t.sources,
                }
            )
            for name, t in tests.items()
        ],
        ignore_index=True,
    )
    rng = np.random.default_rng(seed)
    chosen = [
        cell.iloc[np.sort(rng.choice(len(cell), min(per_cell, len(cell)), replace=False))]
        for _, cell in pool.groupby(["test_age_group", "label"], sort=True)
    ]
    return pd.concat(chosen, ignore_index=True)


def explain_model(
    predictor: Predictor, images: np.ndarray, chosen: pd.DataFrame, labels: list[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """Per chosen image: prediction, correctness and upper-face share of the Grad-CAM map; and the maps."""
    from fer_age.modeling.models import preprocessing_fn

    info = predictor.info
    layer = target_layer(info.model, model_spec(info.model))
    model = load_keras_model(predictor)
    x = np.asarray(preprocessing_fn(info.model, info.preprocessing)(images.astype(np.float32)))
    predicted = model.predict(x, verbose=0).argmax(axis=1)
    maps = gradcam(model, layer, x, predicted)
    cells = chosen.assign(
        model_name=info.name,
        train_age_group=info.age_group,
        degenerate=info.degenerate,
        predicted=predicted,
        correct=predicted == chosen["label"].to_numpy(),
        upper_share=upper_face_share(maps),
        emotion=[labels[i] for i in chosen["label"]],
    )
    return cells, maps


def section(
    cells: pd.DataFrame, table: pd.DataFrame, age_groups: list[str], samples: int, level: float, seed: int
) -> str:
    """The report section: per model, the upper-face share per test age group and its difference from the share
    on the model's own group, each with a bootstrap CI over images. A model flagged degenerate at training gets
    its shares but no verdict: where a model that learned nothing looks says nothing about age groups."""
    overall = table[table["emotion"] == "all"]
    lines = [
        "# Where the models look",
        "",
        f"Share of Grad-CAM saliency on the upper face (eyes, brows: the crop's upper half) with {level:.0%} "
        "bootstrap CIs over images; the rest falls on the lower face (nose, mouth). For other age groups, the "
        "difference from the model's own group, with its CI (each group's images resampled).",
        "",
    ]
    for name, part in overall.groupby("model_name", sort=False):
        by_group = part.set_index("test_age_group")
        own_group = part["train_age_group"].iat[0]
        model_cells = cells[cells["model_name"] == name]
        shares = model_cells.groupby("test_age_group")["upper_share"]
        degenerate = model_cells["degenerate"].iat[0]
        flag = f" **degenerate** ({degenerate}): shares only, no verdict" if degenerate else ""
        lines.append(f"- **{name}** (trained on {own_group}){flag}:")
        for group in [g for g in age_groups if g in by_group.index]:
            r = by_group.loc[group]
            text = f"{r.upper_share:.2f} [{r.upper_share_ci_low:.2f}, {r.upper_share_ci_high:.2f}]"
            if group == own_group:
                text += " (own group)"
            elif own_group in by_group.index and not degenerate:
                diff, low, high = bootstrap_difference(
                    shares.get_group(group).to_numpy(), shares.get_group(own_group).to_numpy(), samples, level, seed
                )
                verdict = (
                    "not clearly different"
                    if low <= 0 <= high
                    else "more on the upper face"
                    if low > 0
                    else "more on the lower face"
                )
                text += f"; {diff:+.2f} [{low:+.2f}, {high:+.2f}] against {own_group}: {verdict}"
            lines.append(f"  - on {group} test images: {text}")
    return "\n".join(lines) + "\n"


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


def main(config: Config, args: argparse.Namespace) -> None:
    """``fer-age explain``."""
    from fer_age.results.plots import plot_cam_gallery, plot_cam_grid
    from fer_age.tracking.runs import connect

    datasets = list(config.datasets)
    predictors = trained_models(datasets, MODELS)
    for predictor in predictors:  # an undeclared target layer fails before any work
        target_layer(predictor.info.model, model_spec(predictor.info.model))
    tests = load_test_splits(datasets, SPLITS)
    experiment_id = connect(config.tracking.experiment)  # an unreachable store fails before the work
    chosen = select_images(tests, config.explain.images_per_cell, config.seed)
    images = np.stack([tests[d].images[i] for d, i in zip(chosen["test_dataset"], chosen["index"])])
    out = fresh_dir(RESULTS, EXPLAIN.name)
    (out / "figures").mkdir()
    all_cells = []
    for predictor in predictors:
        cells, maps = explain_model(predictor, images, chosen, config.labels)
        all_cells.append(cells)
        name = predictor.info.name
        figures = [out / "figures" / f"{name}_gradcam.png", out / "figures" / f"{name}_gallery.png"]
        plot_cam_grid(images, maps, cells, config.age_groups, config.labels, f"{name}: mean Grad-CAM", figures[0])
        plot_cam_gallery(images, maps, cells, config.labels, figures[1])
        log_figures(predictor, figures, experiment_id)
    e = config.evaluate
    cells = pd.concat(all_cells, ignore_index=True)
    table = share_table(cells, e.bootstrap_samples, e.confidence_level, config.seed)
    table.to_csv(out / SALIENCY, index=False, float_format="%.4g")
    text = section(cells, table, config.age_groups, e.bootstrap_samples, e.confidence_level, config.seed)
    (out / SECTION).write_text(text)
    print(text)
