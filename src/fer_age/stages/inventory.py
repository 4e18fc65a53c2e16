"""Inventory stage: list one user raw folder the way crop reads it, for ``dvc repro`` to track in its place
(see :mod:`fer_age.faces.inventory`). Always run; unchanged files are not read again."""

from __future__ import annotations

import argparse
from pathlib import Path

from fer_age.config import Config, ConfigError
from fer_age.contracts import RAW, inventory_path
from fer_age.faces.inventory import list_raw_folder, read_stat_cache, write_inventory, write_stat_cache

STAT_CACHE = Path(".dvc/tmp/fer-age-inventory")  # DVC's own scratch folder, never committed


def main(config: Config, args: argparse.Namespace) -> None:
    """``fer-age inventory RAW``: write data/inventory/<RAW>.csv for the raw folder of a study dataset."""
    raw = args.raw
    if raw not in {ds.raw for ds in config.datasets.values()}:
        raise ConfigError(f"no dataset in params.yaml reads the raw folder '{raw}' ('datasets.<name>.raw')")
    root = RAW / raw
    if not root.is_dir():
        raise ConfigError(f"{root} is missing: place the dataset there in its own layout (docs/datasets.md)")
    cache_file = STAT_CACHE / f"{raw}.json"
    table, cache = list_raw_folder(root, read_stat_cache(cache_file))
    write_inventory(table, inventory_path(raw))
    if Path(".dvc").is_dir():
        write_stat_cache(cache, cache_file)
    kinds = ", ".join(f"{kind}={n}" for kind, n in table["kind"].value_counts().sort_index().items())
    print(f"inventory {raw}: {len(table)} entries ({kinds}) in {inventory_path(raw)}")
