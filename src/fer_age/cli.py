"""``fer-age``: one command with a sub-command per pipeline stage (called by dvc.yaml).

Every stage module has ``main(config, args)``; params are loaded and validated once, before it runs.
"""

from __future__ import annotations

import argparse
import atexit
import errno
import importlib
import json
import os
import sys
import traceback
from pathlib import Path

from fer_age.config import ConfigError, check_name, record_reads
from fer_age.dvc_vars import check_pipeline_vars
from fer_age.errors import FerAgeError, redact
from fer_age.loading import load_config
from fer_age.runtime import import_tensorflow, quiet_tensorflow

TENSORFLOW_STAGES = {"train", "pool", "evaluate", "explain", "predict", "serve"}
TENSORFLOW_DETECTORS = {"mtcnn", "retinaface"}
DATASET_STAGES = {
    "sample": "generate one synthetic dataset",
    "crop": "detect and crop the faces of one dataset",
    "split": "split one dataset into train/valid/test arrays",
    "train": "train the model of one dataset (for one training seed)",
}
SEED_STAGES = {"train", "pool"}


def parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per stage, each naming its module."""
    cli = argparse.ArgumentParser(prog="fer-age", description=__doc__.splitlines()[0])
    cli.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    stages = cli.add_subparsers(dest="stage", required=True, metavar="STAGE")
    stages.add_parser("check", help="validate params.yaml (and the raw folders present) and exit").set_defaults(
        module="check"
    )
    pipeline = stages.add_parser("pipeline", help="write the datasets of params.yaml into dvc.yaml's pipeline vars")
    pipeline.add_argument("--dvc-yaml", default="dvc.yaml", help="the pipeline file (default: dvc.yaml)")
    pipeline.set_defaults(module="pipeline")
    inventory = stages.add_parser("inventory", help="list one raw folder for dvc repro to track (its inventory)")
    inventory.add_argument("raw", help="a raw folder under data/raw named by a dataset in params.yaml")
    inventory.set_defaults(module="inventory")
    for stage, help_text in DATASET_STAGES.items():
        sub = stages.add_parser(stage, help=help_text)
        sub.add_argument("dataset", help="a dataset name listed in params.yaml")
        sub.set_defaults(module=stage)
    pool = stages.add_parser("pool", help="train the pooled (mixed-age) models of pool.models (for one seed)")
    pool.add_argument("address", nargs="?", help=argparse.SUPPRESS)  # DVC's stage address, pool@<seed>
    pool.set_defaults(module="pool")
    for sub in (stages.choices["train"], pool):
        sub.add_argument("--seed", type=int, help="a training seed listed in params 'seeds' (default: the first)")
    stages.add_parser("evaluate", help="test every model on every dataset's test split").set_defaults(module="evaluate")
    stages.add_parser("explain", help="Grad-CAM maps of every model per test age group and emotion").set_defaults(
        module="explain"
    )
    remote = stages.add_parser("check-remote", help="try the DVC S3 remotes' credentials (before a push or pull)")
    remote.add_argument("remote", nargs="?", help="a remote name (default: every remote)")
    remote.set_defaults(module="check_remote")
    predict = stages.add_parser("predict", help="apply a trained model to the faces in new photos")
    predict.add_argument("paths", nargs="+", help="image files or folders")
    predict.add_argument("--out", default="predictions.csv", help="output CSV (default: predictions.csv)")
    serve = stages.add_parser("serve", help="serve a trained model over HTTP: photos in, faces and emotions out")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine)")
    serve.add_argument("--port", type=int, default=5005, help="port (default: 5005; 0: any free port)")
    for sub in (predict, serve):
        sub.add_argument(
            "--model",
            required=True,
            help="a trained .h5 file (with its training.json) or an MLflow model URI (models:/<name>@champion, "
            "models:/<name>/<version>, runs:/<id>/model) of the project's store",
        )
        sub.add_argument("--top-k", type=int, default=1, help="also give the K most likely labels (default: 1)")
        sub.add_argument(
            "--trust-model-code",
            action="store_true",
            help="also load MLflow models from outside the project's store (file:, s3:, a folder): loading an "
            "MLflow model runs its Python code, so only for models you trust",
        )
        sub.set_defaults(module=sub.prog.split()[-1])
    return cli


def stage_item(stage: str, value: str) -> str | None:
    """The item of DVC's stage address ``<stage>@<item>`` (dvc.yaml passes ``"$DVC_STAGE"``, so that no params
    value is ever parsed by the shell), or None when ``value`` is no address."""
    if "@" not in value:
        return None
    address, _, item = value.partition("@")
    if address.rsplit(":", 1)[-1] != stage:
        raise ConfigError(f"'{value}' is not a {stage} stage")
    return item


def dataset_name(stage: str, value: str, what: str = "dataset") -> str:
    """A dataset (or raw folder) name, given as is or as the stage address ``<stage>@<name>``."""
    item = stage_item(stage, value)
    return check_name(value if item is None else item, what)


def stage_seed(args: argparse.Namespace) -> int | None:
    """The training seed of a train or pool command: from DVC's stage address (``train@<dataset>-<seed>``,
    which also gives the dataset, or ``pool@<seed>``) or ``--seed``; None means the first of params ``seeds``."""
    item = stage_item(args.stage, args.dataset if args.stage == "train" else args.address or "")
    if item is None:
        return args.seed
    dataset, _, seed = item.rpartition("-") if args.stage == "train" else ("", "", item)
    if not seed.isdigit():
        raise ConfigError(f"'{args.stage}@{item}' names no training seed (expected {args.stage}@...-<seed>)")
    if args.stage == "train":
        args.dataset = dataset
    return int(seed)


def record_params_read(path: str, stage: str) -> None:
    """Append to ``path``, at exit, one JSON line with the params keys this command read after validation
    (the tests compare them with what dvc.yaml declares for the stage)."""
    reads = record_reads()

    def write() -> None:
        with open(path, "a") as out:
            out.write(json.dumps({"stage": stage, "reads": sorted(reads)}) + "\n")

    atexit.register(write)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    quiet_tensorflow()
    try:
        if args.stage in SEED_STAGES:
            args.seed = stage_seed(args)
        if hasattr(args, "dataset"):
            args.dataset = dataset_name(args.stage, args.dataset)
        if hasattr(args, "raw"):
            args.raw = dataset_name(args.stage, args.raw, "raw folder")
        config = load_config(args.params)  # invalid params fail here, before any work
        if os.environ.get("DVC_STAGE"):  # run by DVC: the paths it used must be those params.yaml names
            check_pipeline_vars(config, Path("dvc.yaml"))
        if os.environ.get("FER_AGE_RECORD_PARAMS"):
            record_params_read(os.environ["FER_AGE_RECORD_PARAMS"], os.environ.get("DVC_STAGE", args.stage))
        if (
            args.module in TENSORFLOW_STAGES
            or args.module == "crop"
            and TENSORFLOW_DETECTORS & set(config.crop.detectors)
        ):
            import_tensorflow()
        importlib.import_module(f"fer_age.stages.{args.module}").main(config, args)
    except FerAgeError as err:  # the project's own errors: one line
        print(redact(f"fer-age {args.stage}: error: {err}"), file=sys.stderr)
        return 1
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            print(redact(traceback.format_exc()), file=sys.stderr)
            return 1
        where = f" while writing {err.filename}" if err.filename else f" under {Path.cwd()}"
        print(
            f"fer-age {args.stage}: error: the disk is full{where}: free space there, then run again", file=sys.stderr
        )
        return 1
    except KeyboardInterrupt:
        print(f"fer-age {args.stage}: interrupted", file=sys.stderr)
        return 130
    except Exception:  # a bug: the whole traceback, with any credentials redacted
        print(redact(traceback.format_exc()), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
