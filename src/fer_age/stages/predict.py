"""``fer-age predict PATH... --model <.h5 | MLflow model URI> [--out predictions.csv] [--top-k K]``: a trained
model on new photos, with the crop stage's face detection and cropping and the model's own preprocessing.

One row per detected face: the file, the face's number (best first), its status, detector, confidence and box,
the predicted label, one probability column per label and, with ``--top-k``, the runners-up. A file with no
usable face, unreadable or too small gets one row with its status, never a crash.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from fer_age.config import Config
from fer_age.errors import FerAgeError
from fer_age.faces.crops import input_files
from fer_age.modeling.face_model import FaceModel
from fer_age.modeling.prediction import predict_files


def main(config: Config, args: argparse.Namespace) -> None:
    """``fer-age predict``."""
    out = Path(args.out)
    if out.is_dir() or out.suffix.lower() != ".csv":
        raise FerAgeError(f"--out {out} must name a .csv file, not a folder or another kind of file")
    out.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(out.parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise FerAgeError(f"--out {out} cannot be written (permissions)")
    model = FaceModel(args.model, args.trust_model_code, min_face=config.crop.min_face)
    if not 1 <= args.top_k <= len(model.labels):
        raise FerAgeError(f"--top-k {args.top_k} must be between 1 and the model's {len(model.labels)} labels")
    files = input_files(args.paths)
    table = predict_files(files, model, config.crop, args.top_k)
    table.to_csv(out, index=False, float_format="%.6g")
    statuses = table.drop_duplicates("file")["status"].value_counts()
    counts = ", ".join(f"{s}={n}" for s, n in statuses.items())
    faces = int(table["face"].notna().sum())
    print(
        f"predict: {len(files)} files ({counts}), {faces} faces; labels: {table['label'].value_counts().to_dict()}; "
        f"written to {args.out}"
    )
