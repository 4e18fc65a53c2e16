"""Sample stage: write one synthetic demo dataset (drawn faces, see :mod:`fer_age.faces.synthetic`)."""

from __future__ import annotations

import argparse

from fer_age.config import Config, ConfigError
from fer_age.contracts import RAW, fresh_dir
from fer_age.faces.synthetic import generate_dataset


def main(config: Config, args: argparse.Namespace) -> None:
    """``fer-age sample DATASET``: write the synthetic dataset into its raw folder."""
    name = args.dataset
    if name not in config.sample.datasets:
        raise ConfigError(f"'{name}' is not listed under 'sample.datasets' in params.yaml")
    s = config.sample
    out_dir = fresh_dir(RAW, name)  # params validation: a study dataset of this name reads data/raw/<name>
    n = generate_dataset(
        out_dir, name, s.datasets[name], config.labels, s.subjects, s.images_per_emotion, s.scene_size, config.seed
    )
    print(f"sample {name}: {n} images in {RAW / name}")
