"""Face finding and scoring speed on a folder of photos: ``fer-age predict``'s path (per detector) against the
``fer`` package (``FER().detect_emotions``), in one process, models loaded before the clock starts.

Usage:
    python benchmarks/predict_speed.py FOLDER --model models/seed-42/SAMPLE-CHILD/CompactCNN_m2_SAMPLE-CHILD.h5

Prints, per method: seconds per image, faces found, and images with at least one face. ``fer`` is timed only
where it is installed (``pip install --no-deps fer``).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from fer_age.config import CropConfig
from fer_age.faces.crops import input_files
from fer_age.faces.images import load_image
from fer_age.modeling.face_model import FaceModel
from fer_age.modeling.prediction import predict_files

METHODS = {
    "fer-age mtcnn": {"detectors": ["mtcnn"]},
    "fer-age haar (plain)": {"detectors": ["haar"], "haar_confirm": False},
    "fer-age haar (confirm, the original's)": {"detectors": ["haar"], "haar_confirm": True},
}


def time_fer_age(files: list[Path], model: FaceModel, cfg: CropConfig) -> tuple[float, int, int]:
    predict_files(files[:2], model, cfg)  # detectors and model warmed up
    started = time.perf_counter()
    table = predict_files(files, model, cfg)
    seconds = time.perf_counter() - started
    found = table[table["status"] == "cropped"]
    return seconds, len(found), found["file"].nunique()


def time_fer(files: list[Path]) -> tuple[float, int, int] | None:
    try:
        from fer.fer import FER  # needs pkg_resources (setuptools<81) besides the wheel
    except ImportError as err:
        print(f"fer not timed: {err}")
        return None
    detector = FER()  # its defaults: Haar cascade, minNeighbors 5, faces from 50 px, TFLite model
    images = [load_image(path)[..., ::-1].copy() for path in files]  # fer takes OpenCV's BGR
    detector.detect_emotions(images[0])
    started = time.perf_counter()
    counts = [len(detector.detect_emotions(image)) for image in images]
    return time.perf_counter() - started, int(np.sum(counts)), int(np.count_nonzero(counts))


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("folder")
    cli.add_argument("--model", required=True, help="a trained .h5 file or MLflow model URI")
    args = cli.parse_args()
    files = input_files([args.folder])
    model = FaceModel(args.model)
    print(f"{len(files)} photos in {args.folder}; reading included, models loaded first")
    results = {name: time_fer_age(files, model, replace(CropConfig(), **cfg)) for name, cfg in METHODS.items()}
    fer = time_fer(files)
    if fer is not None:
        results["fer (Haar, TFLite)"] = fer
    for name, (seconds, faces, images) in results.items():
        print(f"{name:40s} {1000 * seconds / len(files):7.1f} ms/image  {faces:4d} faces in {images:4d} images")


if __name__ == "__main__":
    main()
