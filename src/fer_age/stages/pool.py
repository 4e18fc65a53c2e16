"""Pool stage: mixed-age models trained on several datasets at once (``pool.models``).

``all``: one model on every dataset's training split (validation: the union of validation splits);
``leave_one_out``: per age group, one model on the datasets of all the other groups. Each dataset
keeps its own subject-disjoint split, so no test image is ever trained on.
"""

from __future__ import annotations

import argparse
import json

from fer_age.config import Config, ConfigError
from fer_age.contracts import POOL_PREFIX, SPLITS, fresh_dir, pool_name, read_manifest, seed_models
from fer_age.modeling.training import train_and_track
from fer_age.tracking.runs import connect


def pooled_models(config: Config) -> dict[str, list[str]]:
    """Name -> datasets of every pooled model that ``pool.models`` asks for.

    A dataset belongs to the age groups of its images (one FACES folder can hold adult and older).
    """
    if config.pool.models == "none":
        return {}
    names = list(config.datasets)
    if config.pool.models == "all":
        return {pool_name(None): names}
    groups = {name: set(read_manifest(SPLITS / name)["age_group"]) for name in names}
    pools = {}
    for group in config.age_groups:
        others = [n for n in names if group not in groups[n]]
        if others and len(others) < len(names):
            pools[pool_name(group)] = others
    if not pools:
        raise ConfigError(
            "'pool.models' is leave_one_out, but no age group can be left out: the datasets "
            "cover fewer than two age groups"
        )
    return pools


def main(config: Config, args: argparse.Namespace) -> None:
    """``fer-age pool [--seed N]`` (DVC runs ``pool@<seed>``): every pooled model into
    models/seed-<seed>/POOL/<name>/."""
    seed = config.training_seed(args.seed)
    pools = pooled_models(config)
    connect(config.tracking.experiment)  # an unreachable store fails before anything is deleted
    base = fresh_dir(seed_models(seed), POOL_PREFIX)  # a change of pool.models leaves no stale pooled model
    if not pools:
        print("pool: pool.models is none; no pooled model")
    for name, datasets in pools.items():
        print(f"pool {name} ({config.pool.method}): {', '.join(datasets)}")
        splits = [SPLITS / d for d in datasets]
        train_and_track(config, name, seed, splits, base, base / name, stage="pool", pooled=True)
    (base / "pools.json").write_text(json.dumps(pools, indent=2) + "\n")
