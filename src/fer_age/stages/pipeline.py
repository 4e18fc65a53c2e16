"""``fer-age pipeline``: write what ``dvc repro`` iterates over, from params.yaml: dvc.yaml's ``pipeline``
vars, the dataset names and raw folders (see :mod:`fer_age.dvc_vars`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fer_age.config import Config
from fer_age.dvc_vars import pipeline_vars, write_pipeline_vars


def main(config: Config, args: argparse.Namespace) -> None:
    """``fer-age pipeline``: write the datasets of params.yaml into dvc.yaml's pipeline vars."""
    path = Path(args.dvc_yaml)
    changed = write_pipeline_vars(config, path)
    datasets = ", ".join(pipeline_vars(config)["datasets"])
    print(f"{path}: pipeline vars {'written' if changed else 'already up to date'} (datasets: {datasets})")
