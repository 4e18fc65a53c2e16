"""``fer-age check``: validate params.yaml and, where raw folders exist, their layouts and labels."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from fer_age.config import Config
from fer_age.contracts import RAW
from fer_age.dvc_vars import check_pipeline_vars
from fer_age.faces.entries import shared_across
from fer_age.faces.formats import check_labels, discover
from fer_age.modeling.weights import missing_weights
from fer_age.registry import model_spec


def main(config: Config, args: argparse.Namespace) -> None:
    print(f"{args.params} is valid: {len(config.datasets)} datasets, model {config.model}, head {config.head}")
    spec = model_spec(config.model)
    weights = spec.weights[0] if config.train.weights == "pretrained" else config.train.weights
    problem = missing_weights(spec, weights, config.img_size)
    if problem:
        print(f"  warning: 'train.weights' {config.train.weights} (model {config.model}): {problem}")
    found = {}
    for name, ds in config.datasets.items():
        root = RAW / ds.raw
        if not root.is_dir():
            note = "made by the sample stage" if name in config.sample.datasets else "missing"
            print(f"  {name}: {root} not present ({note})")
            continue
        items = discover(root, name, ds, config.labels)
        check_labels(items, config.labels, name)
        found[name] = items
        statuses = Counter(item.status or "candidate" for item in items)
        print(f"  {name} ({ds.layout}): " + ", ".join(f"{s}={n}" for s, n in sorted(statuses.items())))
    shared = shared_across(found)
    if shared:
        first, source, other, copy = shared[0]
        print(
            f"  note: {len(shared)} images are in more than one dataset (e.g. {first}/{source} = {other}/{copy}); "
            "evaluate leaves each out of the scores of the models that trained on another copy "
            "(predictions.csv marks them seen_in_training)"
        )
    if Path("dvc.yaml").is_file():  # in a project: what dvc repro will iterate over and hash
        check_pipeline_vars(config, Path("dvc.yaml"))
