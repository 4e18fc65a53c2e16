"""Train stage: fine-tune the selected registry model on one dataset, tracked in MLflow."""

from __future__ import annotations

import argparse

from fer_age.config import Config
from fer_age.contracts import HISTORY, MODELS, SPLITS
from fer_age.modeling.fitting import train_and_track


def main(config: Config, args: argparse.Namespace) -> None:
    """``fer-age train DATASET``."""
    config.dataset(args.dataset)
    train_and_track(config, args.dataset, [SPLITS / args.dataset], MODELS, HISTORY, stage="train")
