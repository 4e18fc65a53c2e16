"""Sample stage: write one synthetic demo dataset (drawn faces, see :mod:`fer_age.faces.synthetic`) and its
inventory, which crop depends on as it does on the inventory stage's for a user's raw folder."""

from __future__ import annotations

import argparse

from fer_age.config import Config, ConfigError
from fer_age.contracts import RAW, fresh_dir, inventory_path
from fer_age.faces.inventory import list_raw_folder, write_inventory
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
    write_inventory(list_raw_folder(out_dir)[0], inventory_path(name))
    print(f"sample {name}: {n} images in {RAW / name}")
