"""Stage contracts: where each stage reads and writes, the file names, and the records passed on.

Paths are relative to the project root (DVC runs every stage there). Stages import this module
and ``config``, never each other.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import pandas as pd
import yaml

from fer_age.config import check_name
from fer_age.errors import FerAgeError

RAW = Path("data/raw")
INVENTORY = Path("data/inventory")  # one <raw>.csv per raw folder: what dvc repro tracks in its place
CROPPED = Path("data/cropped")
SPLITS = Path("data/splits")
MODELS = Path("models")
RESULTS = Path("results")
HISTORY = RESULTS / "history"
FIGURES = RESULTS / "figures"
EXPLAIN = RESULTS / "explain"

INVENTORY_COLUMNS = ["source", "kind", "sha256"]
CROP_REPORT = "crop_report.csv"
MANIFEST = "manifest.csv"
TRAINING_INFO = "training.json"
HISTORY_FIGURE = "history.png"
SPLIT_NAMES = ("train", "valid", "test")
POOL_PREFIX = "POOL"
NOT_TRAINED = -1  # the seed column of a model nobody trained here (the off-the-shelf baseline)

PREDICTIONS = "predictions.csv"
COMPLET_RESULT = "complet_result.csv"
CROSS_AGE = "cross_age_accuracy.csv"
CROSS_DATASET = "cross_dataset_accuracy.csv"
AGE_GAPS = "age_gaps.csv"
BASELINE_GAINS = "baseline_gains.csv"
RECALL_BY_EMOTION = "recall_by_emotion.csv"
METRICS = "metrics.json"
REPORT = "report.md"


class Status:
    """The crop report's ``status`` of an input entry."""

    CROPPED = "cropped"  # a face was found and cropped
    NO_FACE_KEPT_FULL = "no_face_kept_full"  # no usable face; the whole image is kept (crop.no_face: keep_full)
    NO_FACE_SKIPPED = "no_face_skipped"  # no usable face; skipped (crop.no_face: skip)
    TOO_SMALL = "too_small"  # a side below crop.min_face
    UNREADABLE = "unreadable"  # not decodable, empty, or above crop.max_pixels
    NOT_AN_IMAGE = "not_an_image"  # extension is not an image type
    BROKEN_LINK = "broken_link"  # dangling or looping symbolic link
    EXCLUDED_EMOTION = "excluded_emotion"  # emotion not in params labels
    EXCLUDED_AGE_GROUP = "excluded_age_group"  # age group not in datasets.<DS>.age_groups
    NOT_PEAK_FRAME = "not_peak_frame"  # CK+: a frame before a labelled sequence's peak frames
    UNLABELLED = "unlabelled"  # the layout gives it no emotion (or no age group)
    METADATA = "metadata"  # a labels file or another file the layout reads, not an image
    MISSING = "missing"  # listed in a labels file, but no such file
    DUPLICATE = "duplicate"  # the same bytes as an earlier candidate with the same label (that one is used)
    CONFLICTING_LABELS = "conflicting_labels"  # the same bytes as a candidate with another label: neither is used


USABLE = (Status.CROPPED, Status.NO_FACE_KEPT_FULL)

REPORT_COLUMNS = [
    "source",
    "emotion",
    "label",
    "subject",
    "age_group",
    "status",
    "detector",
    "x",
    "y",
    "width",
    "height",
    "confidence",
    "output",
    "message",
]
REPORT_DTYPES = {
    "source": str,
    "emotion": str,
    "label": "Int64",
    "subject": str,
    "age_group": str,
    "status": str,
    "detector": str,
    "x": "Int64",
    "y": "Int64",
    "width": "Int64",
    "height": "Int64",
    "confidence": float,
    "output": str,
    "message": str,
}
MANIFEST_DTYPES = {
    "source": str,
    "output": str,
    "emotion": str,
    "label": "int64",
    "subject": str,
    "age_group": str,
    "sha1": str,
    "group": "int64",
    "split": str,
}


class MissingInputError(FerAgeError, FileNotFoundError):
    """A stage's input (another stage's output) is missing."""


def require(path: Path, hint: str) -> Path:
    """``path`` if it exists, else a clear error saying which stage makes it."""
    if not path.exists():
        raise MissingInputError(f"{path} is missing: {hint}")
    return path


def inventory_path(raw: str) -> Path:
    """The inventory of raw folder ``raw`` (a checked name, never a path)."""
    return INVENTORY / f"{check_name(raw, 'raw folder')}.csv"


def read_crop_report(crop_dir: Path) -> pd.DataFrame:
    """The crop stage's report, typed (labels and boxes as nullable integers)."""
    path = require(crop_dir / CROP_REPORT, "run the crop stage for this dataset first")
    numeric = {column: [""] for column, kind in REPORT_DTYPES.items() if kind is not str}
    return pd.read_csv(path, dtype=REPORT_DTYPES, keep_default_na=False, na_values=numeric)


def read_manifest(split_dir: Path) -> pd.DataFrame:
    """The split stage's manifest: one row per usable image with its split."""
    path = require(split_dir / MANIFEST, "run the split stage for this dataset first")
    return pd.read_csv(path, dtype=MANIFEST_DTYPES, keep_default_na=False)


def array_paths(split_dir: Path, split: str) -> tuple[Path, Path]:
    """``X_<split>.npy`` (uint8 N x H x W x 3) and ``y_<split>.npy`` (int64 class indices)."""
    return split_dir / f"X_{split}.npy", split_dir / f"y_{split}.npy"


def split_digest(split_dir: Path) -> str:
    """The DVC hash of a dataset's splits folder, read from dvc.lock (or, outside DVC, of its manifest)."""
    lock = Path("dvc.lock")
    if lock.is_file():
        stage = yaml.safe_load(lock.read_text()).get("stages", {}).get(f"split@{split_dir.name}", {})
        for out in stage.get("outs", []):
            if out.get("path") == str(SPLITS / split_dir.name):
                return str(out["md5"]).removesuffix(".dir")
    return hashlib.md5((split_dir / MANIFEST).read_bytes()).hexdigest()


def pool_name(held_out: str | None) -> str:
    """The name of a pooled model: ``POOL-all``, or ``POOL-no-<age group>``."""
    return f"{POOL_PREFIX}-all" if held_out is None else f"{POOL_PREFIX}-no-{held_out}"


OWN_AND_POOLED = f"{POOL_PREFIX}-all+own"  # the rows of evaluate.own_and_pooled: POOL-all and each test set's own model


def held_out_group(name: str) -> str | None:
    """The age group a leave-one-out pooled model never saw (``POOL-no-<group>``), else None."""
    prefix = f"{POOL_PREFIX}-no-"
    return name.removeprefix(prefix) if name.startswith(prefix) else None


@dataclass
class TrainingInfo:
    """What a trained model leaves for evaluation (no times or run ids: DVC outputs stay byte-stable)."""

    name: str  # dataset name, or POOL-all / POOL-no-<group> for pooled models
    train_datasets: list[str]
    age_group: str  # age groups of its training images, '+'-joined
    model: str
    head: str
    model_file: str
    preprocessing: str
    img_size: int
    labels: list[str]
    epochs_run: int
    best_epoch: int
    degenerate: str = ""  # empty when the model learned, else why it is flagged
    best_metrics: dict[str, float] = field(default_factory=dict)
    seed: int = NOT_TRAINED  # the training seed

    def save(self, folder: Path) -> Path:
        path = folder / TRAINING_INFO
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, folder: Path) -> TrainingInfo:
        path = require(folder / TRAINING_INFO, "run `dvc repro` (stages train@<dataset>-<seed> and pool@<seed>)")
        data = json.loads(path.read_text())
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def seed_models(seed: int) -> Path:
    """Where the models of one training seed live: ``models/seed-<seed>/<dataset>`` and ``.../POOL/<pool>``."""
    return MODELS / f"seed-{seed}"


def seed_history(seed: int) -> Path:
    """Where the per-epoch histories of one training seed's dataset models go."""
    return HISTORY / f"seed-{seed}"


def output_dir(base: Path, name: str) -> Path:
    """The resolved output folder ``base/name`` of a stage, checked to lie directly inside ``base``."""
    check_name(name, "dataset")
    parent = base.resolve()
    target = (base / name).resolve()
    if target.parent != parent:
        raise FerAgeError(f"refusing to write outside {base}: {base / name} resolves to {target}")
    return target


def fresh_dir(base: Path, name: str) -> Path:
    """Empty the stage output folder ``base/name`` (and only it), so a rerun leaves no stale files."""
    target = output_dir(base, name)
    if (base / name).is_symlink():
        raise FerAgeError(f"refusing to empty {base / name}: it is a symbolic link")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    return target
