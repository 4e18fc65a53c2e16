"""Stratified, subject-disjoint train/valid/test splits of the usable crops, written as memory-mapped arrays.

Arrays: ``X_<split>.npy`` uint8 of shape N x img_size x img_size x 3 (RGB) and ``y_<split>.npy`` int64 class
indices into params ``labels`` (not one-hot). Images are decoded one at a time straight into memory-mapped
arrays, so memory does not grow with the dataset."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from fer_age.config import SplitConfig
from fer_age.contracts import SPLIT_NAMES, USABLE, array_paths, read_crop_report
from fer_age.errors import FerAgeError
from fer_age.faces.images import square
from fer_age.grouping import SPLIT_ORDER, deal_groups, group_ids, split_fractions


class SplitError(FerAgeError, ValueError):
    """The data cannot be split as asked (too few images or subjects in a class)."""


def usable_crops(crop_dir: Path) -> pd.DataFrame:
    """The usable rows of the crop report, sorted by source, with a content hash of each crop."""
    report = read_crop_report(crop_dir)
    rows = report[report["status"].isin(USABLE)].sort_values("source").reset_index(drop=True)
    if rows.empty:
        raise SplitError(f"{crop_dir} lists no usable image")
    return pd.DataFrame(
        {
            "source": rows["source"],
            "output": rows["output"],
            "emotion": rows["emotion"],
            "label": rows["label"].astype("int64"),
            "subject": rows["subject"],
            "age_group": rows["age_group"],
            "sha1": [hashlib.sha1((crop_dir / output).read_bytes()).hexdigest() for output in rows["output"]],
        }
    )


def assign_splits(
    labels: np.ndarray,
    groups: np.ndarray,
    cfg: SplitConfig,
    seed: int,
    class_names: list[str],
    strata: np.ndarray | None = None,
) -> np.ndarray:
    """The split name of every image: groups never straddle splits; fractions hold per stratum
    (default: the class; the split stage uses class x age group, so that a dataset mixing age groups
    has each of them in every split)."""
    unit = "subjects/images" if cfg.by_subject else "distinct images"
    for label in np.unique(labels):
        n_groups = len(np.unique(groups[labels == label]))
        if n_groups < 3:
            raise SplitError(
                f"class '{class_names[label]}' has only {n_groups} {unit}; "
                "at least 3 are needed to give train, valid and test one each"
            )
    fractions = split_fractions(cfg.test_size, cfg.valid_size)
    split = np.array(SPLIT_ORDER)[deal_groups(groups, labels if strata is None else strata, fractions, seed)]
    for name in SPLIT_NAMES:
        missing = sorted(set(labels) - set(labels[split == name]))
        if missing:
            raise SplitError(
                f"split '{name}' got no image of class {', '.join(class_names[m] for m in missing)}: "
                f"too few {unit} for split.test_size {cfg.test_size} / split.valid_size "
                f"{cfg.valid_size}; add data or change them"
            )
    return split


def write_arrays(manifest: pd.DataFrame, crop_dir: Path, out_dir: Path, img_size: int) -> None:
    """Decode and resize each crop straight into its split's memory-mapped ``X`` array."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in SPLIT_NAMES:
        rows = manifest[manifest["split"] == name]
        x_path, y_path = array_paths(out_dir, name)
        images = np.lib.format.open_memmap(x_path, mode="w+", dtype=np.uint8, shape=(len(rows), img_size, img_size, 3))
        for i, output in enumerate(rows["output"]):
            image = cv2.imread(str(crop_dir / output), cv2.IMREAD_COLOR)
            if image is None:
                raise SplitError(f"crop {crop_dir / output} cannot be read: rerun the crop stage")
            images[i] = square(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), img_size)
        images.flush()
        del images
        np.save(y_path, rows["label"].to_numpy(np.int64))


def split_dataset(crop_dir: Path, cfg: SplitConfig, seed: int, class_names: list[str]) -> pd.DataFrame:
    """The manifest: every usable crop with its subject, group and split."""
    manifest = usable_crops(crop_dir)
    unknown = int((manifest["subject"] == "").sum())
    if cfg.by_subject and unknown:
        print(
            f"note: {unknown} of {len(manifest)} images have no subject id; each is its own group "
            "(set the dataset's subject_pattern, or a layout that gives subjects)"
        )
    groups = group_ids(manifest["subject"].tolist(), manifest["sha1"].tolist(), cfg.by_subject)
    manifest["group"] = groups
    labels = manifest["label"].to_numpy()
    strata = labels * 1000 + pd.factorize(manifest["age_group"], sort=True)[0]
    manifest["split"] = assign_splits(labels, groups, cfg, seed, class_names, strata)
    return manifest
