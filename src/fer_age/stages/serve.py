"""``fer-age serve --model <.h5 | MLflow model URI> [--host 127.0.0.1] [--port 5005]``: a trained model over
HTTP, finding the faces itself: ``POST /analyze`` with a photo's bytes (or JSON ``{"image": base64}``) answers
every face with its box, detector, confidence and emotions, as ``fer_age.analyze``."""

from __future__ import annotations

import argparse

from fer_age.config import Config
from fer_age.modeling.face_model import FaceModel
from fer_age.modeling.service import serve


def main(config: Config, args: argparse.Namespace) -> None:
    """``fer-age serve``."""
    model = FaceModel(args.model, args.trust_model_code, min_face=config.crop.min_face)
    serve(model, config.crop, args.model, args.host, args.port, args.top_k)
