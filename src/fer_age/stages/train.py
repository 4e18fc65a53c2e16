"""Train stage: fine-tune the selected registry model on one dataset with one training seed, tracked in MLflow."""

from __future__ import annotations

import argparse

from fer_age.config import Config
from fer_age.contracts import SPLITS, seed_history, seed_models
from fer_age.modeling.training import train_and_track


def main(config: Config, args: argparse.Namespace) -> None:
    """``fer-age train DATASET [--seed N]`` (DVC runs ``train@<dataset>-<seed>``)."""
    config.dataset(args.dataset)
    seed = config.training_seed(args.seed)
    train_and_track(
        config, args.dataset, seed, [SPLITS / args.dataset], seed_models(seed), seed_history(seed), stage="train"
    )
