"""Explain stage: Grad-CAM maps of every trained model on a seeded selection of test images per test age
group and emotion, the share of saliency on the upper vs lower face, figures and a report section."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from fer_age.config import Config
from fer_age.contracts import EXPLAIN, RESULTS, SPLITS, fresh_dir
from fer_age.modeling.inference import load_test_splits, trained_models
from fer_age.modeling.saliency import (
    explain_model,
    select_images,
    share_table,
    target_layer,
)
from fer_age.registry import model_spec
from fer_age.results.reporting import section
from fer_age.tracking.evaluation import log_figures

SALIENCY = "saliency.csv"
SECTION = "report.md"


def main(config: Config, args: argparse.Namespace) -> None:
    """``fer-age explain``."""
    from fer_age.results.plots import plot_cam_gallery, plot_cam_grid
    from fer_age.tracking.runs import connect

    datasets = list(config.datasets)
    predictors = trained_models(datasets, config.seeds[:1])  # the first training seed's models
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
