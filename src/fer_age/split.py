"""Split stage: stratified, subject-disjoint train/valid/test arrays with a manifest.

Arrays: ``X_<split>.npy`` uint8 of shape N x img_size x img_size x 3 (RGB) and
``y_<split>.npy`` int64 class indices into params ``labels`` (not one-hot).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from fer_age.config import SplitConfig
from fer_age.crop import REPORT_NAME, USABLE
from fer_age.datasets import subject_id

SPLITS = ("train", "valid", "test")


class SplitError(ValueError):
    """The data cannot be split as asked (too few images or subjects in a class)."""


def read_crops(crop_dir: Path, subject_pattern: str | None, img_size: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The usable crops of a dataset, resized, with subject ids and content hashes."""
    report_path = crop_dir / REPORT_NAME
    if not report_path.is_file():
        raise FileNotFoundError(f"crop report {report_path} is missing: run the crop stage first")
    report = pd.read_csv(report_path, keep_default_na=False)
    rows = report[report["status"].isin(USABLE)].sort_values("source").reset_index(drop=True)
    if rows.empty:
        raise SplitError(f"{report_path} lists no usable image")
    images, digests = [], []
    for output in rows["output"]:
        data = (crop_dir / output).read_bytes()
        digests.append(hashlib.sha1(data).hexdigest())
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        image = cv2.resize(image, (img_size, img_size), interpolation=cv2.INTER_AREA)
        images.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    manifest = pd.DataFrame({
        "source": rows["source"], "output": rows["output"], "emotion": rows["emotion"],
        "label": rows["label"].astype(int), "sha1": digests,
        "subject": [subject_id(Path(s).name, subject_pattern) or "" for s in rows["source"]],
    })
    return manifest, np.stack(images).astype(np.uint8)


def group_ids(subjects: list[str], digests: list[str], by_subject: bool) -> np.ndarray:
    """Groups that must stay in one split: same subject (when known) or byte-identical image."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for subject, digest in zip(subjects, digests):
        find(f"h:{digest}")
        if by_subject and subject:
            parent[find(f"h:{digest}")] = find(f"s:{subject}")
    roots = [find(f"h:{d}") for d in digests]
    return np.unique(roots, return_inverse=True)[1]


def _fold(labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    n_splits = max(round(1 / fraction), 2)
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    rest, held_out = next(splitter.split(np.zeros(len(labels)), labels, groups))
    return rest, held_out


def assign_splits(labels: np.ndarray, groups: np.ndarray, cfg: SplitConfig, seed: int,
                  class_names: list[str]) -> np.ndarray:
    """The split name of every image: test first, then validation out of the rest."""
    for label in np.unique(labels):
        n_groups = len(np.unique(groups[labels == label]))
        if n_groups < 3:
            unit = "subjects/images" if cfg.by_subject else "distinct images"
            raise SplitError(f"class '{class_names[label]}' has only {n_groups} {unit}; "
                             "at least 3 are needed to give train, valid and test one each")
    rest, test = _fold(labels, groups, cfg.test_size, seed)
    train, valid = _fold(labels[rest], groups[rest], cfg.valid_size, seed)
    split = np.empty(len(labels), dtype=object)
    split[test], split[rest[valid]], split[rest[train]] = "test", "valid", "train"
    for name in SPLITS:
        missing = sorted(set(range(len(class_names))) - set(labels[split == name]) & set(labels))
        if missing:
            raise SplitError(f"split '{name}' got no image of class "
                             f"{', '.join(class_names[m] for m in missing)}: too few images or subjects "
                             "to stratify; add data or change split.test_size/valid_size")
    return split.astype(str)


def run_split(crop_dir: Path, out_dir: Path, subject_pattern: str | None, img_size: int,
              cfg: SplitConfig, seed: int, class_names: list[str]) -> pd.DataFrame:
    """The split stage: write ``X_/y_`` arrays per split and ``manifest.csv``."""
    manifest, images = read_crops(crop_dir, subject_pattern, img_size)
    if subject_pattern and cfg.by_subject and (manifest["subject"] == "").any():
        n = int((manifest["subject"] == "").sum())
        print(f"warning: {n} file names do not match the subject pattern; each is its own group")
    labels = manifest["label"].to_numpy()
    groups = group_ids(manifest["subject"].tolist(), manifest["sha1"].tolist(), cfg.by_subject)
    manifest["group"] = groups
    manifest["split"] = assign_splits(labels, groups, cfg, seed, class_names)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in SPLITS:
        chosen = (manifest["split"] == name).to_numpy()
        np.save(out_dir / f"X_{name}.npy", images[chosen])
        np.save(out_dir / f"y_{name}.npy", labels[chosen].astype(np.int64))
    manifest.to_csv(out_dir / "manifest.csv", index=False)
    counts = manifest.groupby(["split", "emotion"]).size().unstack(fill_value=0)
    print(counts.to_string())
    return manifest
