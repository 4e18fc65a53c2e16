"""``fer-age pipeline``: write what ``dvc repro`` iterates over and must not hash, from params.yaml.

- dvc.yaml's ``pipeline`` vars: the dataset names and raw folders (see :mod:`fer_age.dvc_vars`);
- a block of ``.dvcignore``: entries of the raw folders that DVC cannot hash (see :mod:`fer_age.dvcignore`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fer_age.config import Config
from fer_age.dvc_vars import pipeline_vars, write_pipeline_vars
from fer_age.dvcignore import unhashable_entries, write_dvcignore


def main(config: Config, args: argparse.Namespace) -> None:
    """``fer-age pipeline``: write the datasets of params.yaml into dvc.yaml's pipeline vars."""
    path = Path(args.dvc_yaml)
    changed = write_pipeline_vars(config, path)
    datasets = ", ".join(pipeline_vars(config)["datasets"])
    print(f"{path}: pipeline vars {'written' if changed else 'already up to date'} (datasets: {datasets})")
    patterns = unhashable_entries(config)
    changed = write_dvcignore(patterns, path.parent / ".dvcignore")
    print(
        f"{path.parent / '.dvcignore'}: {len(patterns)} raw entries DVC cannot hash "
        f"{'written' if changed else 'already listed'}" + "".join(f"\n  {p}" for p in patterns)
    )
