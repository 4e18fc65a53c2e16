"""Crop stage: detect the face in every raw image and save the crops, with one report row per entry."""

from __future__ import annotations

import argparse
import time

from fer_age.config import Config
from fer_age.contracts import CROPPED, RAW, fresh_dir
from fer_age.faces.crops import crop_dataset, write_report
from fer_age.faces.detection import make_detector
from fer_age.faces.formats import check_labels, discover


def main(config: Config, args: argparse.Namespace) -> None:
    """``fer-age crop DATASET``: validate the labels against the raw folder, then crop."""
    ds = config.dataset(args.dataset)
    items = discover(RAW / ds.raw, args.dataset, ds, config.labels)
    check_labels(items, config.labels, args.dataset)  # before any work
    detectors = [make_detector(d, config.crop) for d in config.crop.detectors]
    out_dir = fresh_dir(CROPPED, args.dataset)
    started = time.perf_counter()
    report = crop_dataset(items, out_dir, args.dataset, config.crop, detectors)
    write_report(report, out_dir, args.dataset, time.perf_counter() - started)
