"""The dataset names DVC iterates over, kept in dvc.yaml itself rather than read from params.yaml.

DVC builds every stage's paths (``data/raw/<raw>``, ``data/cropped/<name>``, ...) and removes the old outputs
before any fer-age code runs. Were those paths interpolated from params.yaml, a value such as
``sample.datasets: {'../../x': adult}`` (in the file or through ``dvc exp run -S``) would make DVC delete or
hash folders outside the project. So dvc.yaml's ``foreach`` loops go over its own ``pipeline`` vars, which
``fer-age pipeline`` writes from params.yaml once validated (names of letters, digits, ``-`` and ``_`` only),
and every stage refuses to run while the two disagree.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from fer_age.config import Config, ConfigError, check_name

BEGIN = "  # BEGIN fer-age pipeline: written by `fer-age pipeline` from params.yaml; do not edit by hand"
END = "  # END fer-age pipeline"
BLOCK = re.compile(rf"^{re.escape(BEGIN)}\n(?P<body>.*?)^{re.escape(END)}$", re.S | re.M)


def pipeline_vars(config: Config) -> dict[str, Any]:
    """What dvc.yaml's stages iterate over: each study dataset's raw folder, the synthetic datasets, the raw
    folders the inventory stage lists (those no sample stage writes) and the training seeds."""
    samples = list(config.sample.datasets)
    return {
        "datasets": {name: ds.raw for name, ds in config.datasets.items()},
        "samples": samples,
        "raws": sorted({ds.raw for ds in config.datasets.values()} - set(samples)),
        "seeds": list(config.seeds),
    }


def read_pipeline_vars(dvc_yaml: Path) -> dict[str, Any]:
    """The ``pipeline`` vars block of ``dvc_yaml``, or a ConfigError saying it is missing."""
    match = BLOCK.search(dvc_yaml.read_text()) if dvc_yaml.is_file() else None
    if match is None:
        raise ConfigError(
            f"{dvc_yaml} has no fer-age pipeline block (vars between '{BEGIN.strip()}' and '{END.strip()}')"
        )
    (entry,) = yaml.safe_load(match["body"])
    return entry["pipeline"]


def render(values: dict[str, Any]) -> str:
    """The block's body: a ``vars`` list entry holding ``pipeline``, names checked once more."""
    for name, raw in values["datasets"].items():
        check_name(name, "dataset")
        check_name(raw, f"'datasets.{name}.raw' folder")
    for name in [*values["samples"], *values["raws"]]:
        check_name(name, "'sample.datasets' dataset or raw folder")
    if not all(type(seed) is int and seed >= 0 for seed in values["seeds"]):
        raise ConfigError(f"'seeds' must be non-negative integers, got {values['seeds']}")
    text = yaml.safe_dump([{"pipeline": values}], sort_keys=False, default_flow_style=False)
    return "".join(f"  {line}\n" for line in text.splitlines())


def write_pipeline_vars(config: Config, dvc_yaml: Path) -> bool:
    """Rewrite the block of ``dvc_yaml`` from ``config``; returns whether it changed."""
    text = dvc_yaml.read_text()
    read_pipeline_vars(dvc_yaml)  # the block must be there
    new = BLOCK.sub(lambda _: f"{BEGIN}\n{render(pipeline_vars(config))}{END}", text, count=1)
    if new != text:
        dvc_yaml.write_text(new)
    return new != text


def check_pipeline_vars(config: Config, dvc_yaml: Path) -> None:
    """A ConfigError naming what differs when dvc.yaml's block disagrees with params.yaml."""
    written, wanted = read_pipeline_vars(dvc_yaml), pipeline_vars(config)
    if written != wanted:
        differences = [
            f"{key}: params.yaml {_show(wanted[key])}, dvc.yaml {_show(written.get(key))}"
            for key in wanted
            if written.get(key) != wanted[key]
        ]
        raise ConfigError(
            "the datasets or seeds of params.yaml and dvc.yaml's pipeline vars differ ("
            + "; ".join(differences)
            + "): run `fer-age pipeline` to write them into dvc.yaml, "
            "then `dvc repro`"
        )


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    return "[" + ", ".join(map(str, value or [])) + "]"
