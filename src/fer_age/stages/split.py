"""Split stage: stratified, subject-disjoint train/valid/test arrays with a manifest.

Arrays: ``X_<split>.npy`` uint8 of shape N x img_size x img_size x 3 (RGB) and
``y_<split>.npy`` int64 class indices into params ``labels`` (not one-hot). Images are decoded
one at a time straight into memory-mapped arrays, so memory does not grow with the dataset.
"""

from __future__ import annotations

import argparse

from fer_age.config import Config
from fer_age.contracts import CROPPED, MANIFEST, SPLIT_NAMES, SPLITS, fresh_dir
from fer_age.splits import split_dataset, write_arrays


def main(config: Config, args: argparse.Namespace) -> None:
    """``fer-age split DATASET``."""
    config.dataset(args.dataset)
    crop_dir = CROPPED / args.dataset
    manifest = split_dataset(crop_dir, config.split, config.seed, config.labels)
    out_dir = fresh_dir(SPLITS, args.dataset)
    write_arrays(manifest, crop_dir, out_dir, config.img_size)
    manifest.to_csv(out_dir / MANIFEST, index=False)
    counts = manifest.groupby(["split", "emotion"]).size().unstack(fill_value=0)
    print(counts.reindex(SPLIT_NAMES).to_string())
