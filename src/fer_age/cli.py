"""``fer-age``: one command with a sub-command per pipeline stage (called by dvc.yaml)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from fer_age.config import Config, ConfigError, load_config

RAW, CROPPED, SPLITS, MODELS, RESULTS = (Path(p) for p in ("data/raw", "data/cropped", "data/splits",
                                                             "models", "results"))


def _fresh(path: Path) -> Path:
    """Empty ``path`` so that a rerun outside DVC leaves no stale files."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def stage_sample(config: Config, name: str) -> None:
    from fer_age.sample import generate_dataset

    if name not in config.sample.datasets:
        raise ConfigError(f"'{name}' is not listed under 'sample.datasets' in params.yaml")
    s = config.sample
    n = generate_dataset(_fresh(RAW / name), name, s.datasets[name], config.labels, s.subjects,
                         s.images_per_emotion, s.scene_size, config.seed)
    print(f"sample {name}: {n} images in {RAW / name}")


def stage_crop(config: Config, name: str) -> None:
    from fer_age.crop import run_crop
    from fer_age.detect import make_detector

    config.dataset(name)
    detectors = [make_detector(d, config.crop) for d in config.crop.detectors]
    run_crop(RAW / name, _fresh(CROPPED / name), name, config.labels, config.crop, detectors)


def stage_split(config: Config, name: str) -> None:
    from fer_age.split import run_split

    run_split(CROPPED / name, _fresh(SPLITS / name), config.dataset(name).subject_pattern,
              config.img_size, config.split, config.seed, config.labels)


def stage_train(config: Config, name: str) -> None:
    from fer_age.train import run_train

    run_train(config, name, SPLITS / name, _fresh(MODELS / name), RESULTS / "history")


def stage_evaluate(config: Config) -> None:
    from fer_age.evaluate import run_evaluate

    run_evaluate(config, SPLITS, MODELS, RESULTS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fer-age", description=__doc__)
    parser.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    stages = parser.add_subparsers(dest="stage", required=True)
    stages.add_parser("check", help="validate params.yaml and exit")
    for stage in ("sample", "crop", "split", "train"):
        stages.add_parser(stage, help=f"run the {stage} stage for one dataset").add_argument("dataset")
    stages.add_parser("evaluate", help="test every model on every dataset's test split")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        config = load_config(args.params)  # invalid params fail here, before any work
        if args.stage == "check":
            print(f"{args.params} is valid: {len(config.datasets)} datasets, model {config.model}")
        elif args.stage == "evaluate":
            stage_evaluate(config)
        else:
            globals()[f"stage_{args.stage}"](config, args.dataset)
    except (ConfigError, OSError, KeyError, RuntimeError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"fer-age {args.stage}: error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
