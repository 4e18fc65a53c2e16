"""``fer-age predict PATH... --model <.h5 | MLflow model URI> [--out predictions.csv]``: a trained model on
new photos, with the crop stage's detection and cropping and the model's own preprocessing.

One row per input file: its status (as in the crop report), the detector, the predicted label and one
probability column per label. Unreadable, too small or face-less files get a status, never a crash.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from fer_age.config import Config
from fer_age.errors import FerAgeError
from fer_age.faces.crops import input_files, predict_files
from fer_age.modeling.face_model import FaceModel


def main(config: Config, args: argparse.Namespace) -> None:
    """``fer-age predict``."""
    out = Path(args.out)
    if out.is_dir() or out.suffix.lower() != ".csv":
        raise FerAgeError(f"--out {out} must name a .csv file, not a folder or another kind of file")
    out.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(out.parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise FerAgeError(f"--out {out} cannot be written (permissions)")
    model = FaceModel(args.model, args.trust_model_code)
    files = input_files(args.paths)
    table = predict_files(files, model, config, config.crop.batch_size * 8)
    table.to_csv(out, index=False, float_format="%.6g")
    counts = ", ".join(f"{s}={n}" for s, n in table["status"].value_counts().items())
    print(
        f"predict: {len(table)} files ({counts}); labels: {table['label'].value_counts().to_dict()}; "
        f"written to {args.out}"
    )
