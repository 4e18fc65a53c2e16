"""Face detectors (retinaface, mtcnn, haar, none) behind one batch interface.

Every detector takes a list of RGB uint8 images and returns, per image, the faces it found.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from fer_age.config import CropConfig

HAAR_FILE = "haarcascade_frontalface_default.xml"


class DetectorUnavailableError(RuntimeError):
    """A detector cannot run here (missing weights or cascade file)."""


@dataclass(frozen=True)
class Face:
    """One detected face: box as x, y, width, height in pixels; eyes in (x, y) when known."""

    box: tuple[int, int, int, int]
    confidence: float
    left_eye: tuple[float, float] | None = None
    right_eye: tuple[float, float] | None = None

    @property
    def area(self) -> int:
        return self.box[2] * self.box[3]


class Detector(Protocol):
    name: str

    def detect(self, images: list[np.ndarray]) -> list[list[Face]]: ...


class NoDetector:
    """For already-cropped datasets (e.g. CK+48): the whole image is the face."""

    name = "none"

    def detect(self, images: list[np.ndarray]) -> list[list[Face]]:
        return [[Face((0, 0, im.shape[1], im.shape[0]), 1.0)] for im in images]


class MtcnnDetector:
    """MTCNN (the ``mtcnn`` package, weights shipped in its wheel); detects whole batches."""

    name = "mtcnn"

    def __init__(self, min_confidence: float):
        from mtcnn import MTCNN

        self.min_confidence = min_confidence
        self.model = MTCNN(device="CPU:0" if not _has_gpu() else "GPU:0")

    def detect(self, images: list[np.ndarray]) -> list[list[Face]]:
        results = self.model.detect_faces(images) if len(images) > 1 else [self.model.detect_faces(images[0])]
        return [[_mtcnn_face(f) for f in faces if f["confidence"] >= self.min_confidence] for faces in results]


def _mtcnn_face(found: dict) -> Face:
    x, y, w, h = (int(v) for v in found["box"])
    points = found.get("keypoints", {})
    # mtcnn names eyes from the viewer's side; keep image-left as left_eye
    eyes = sorted([tuple(map(float, points[k])) for k in ("left_eye", "right_eye") if k in points])
    return Face((x, y, w, h), float(found["confidence"]), *(eyes if len(eyes) == 2 else (None, None)))


class HaarDetector:
    """OpenCV's frontal-face Haar cascade, as in the original (a box must be re-detected inside itself)."""

    name = "haar"

    def __init__(self, cascade_path: str | None):
        path = Path(cascade_path) if cascade_path else _bundled_cascade()
        if path is None or not path.is_file():
            raise DetectorUnavailableError(
                f"Haar cascade file not found ({path or HAAR_FILE}). Install an OpenCV 4.x wheel "
                "(opencv-contrib-python-headless<5 ships it in cv2.data), or download "
                f"{HAAR_FILE} from the OpenCV repository (data/haarcascades/) and set "
                "'crop.haar_cascade' in params.yaml to its path.")
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise DetectorUnavailableError(f"OpenCV could not load the Haar cascade {path}")

    def _find(self, gray: np.ndarray, min_fraction: float) -> list[tuple[int, int, int, int]]:
        side = max(int(min(gray.shape) * min_fraction), 20)
        boxes = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=10, minSize=(side, side))
        return [tuple(int(v) for v in b) for b in boxes]

    def detect(self, images: list[np.ndarray]) -> list[list[Face]]:
        results = []
        for image in images:
            gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
            faces = []
            for x, y, w, h in self._find(gray, 1 / 6):
                if self._find(gray[y:y + h, x:x + w], 1 / 2):  # the original's confirmation pass
                    faces.append(Face((x, y, w, h), 1.0))
            results.append(faces)
        return results


def _bundled_cascade() -> Path | None:
    data = getattr(cv2, "data", None)
    folder = getattr(data, "haarcascades", "") if data else ""
    return Path(folder) / HAAR_FILE if folder else None


class RetinaFaceDetector:
    """RetinaFace (the ``retina-face`` package); its weights are downloaded on first use."""

    name = "retinaface"

    def __init__(self, min_confidence: float):
        from retinaface import RetinaFace

        self.min_confidence = min_confidence
        self.api = RetinaFace
        home = Path(os.getenv("DEEPFACE_HOME", str(Path.home())))
        weights = home / ".deepface" / "weights" / "retinaface.h5"
        try:
            self.model = RetinaFace.build_model()
        except Exception as err:
            raise DetectorUnavailableError(
                f"RetinaFace weights could not be loaded or downloaded. Download retinaface.h5 "
                "(github.com/serengil/deepface_models releases, v1.0) on a machine with internet and "
                f"place it at {weights} (the folder follows $DEEPFACE_HOME), or use another "
                f"detector in 'crop.detectors'. Cause: {err}") from err

    def detect(self, images: list[np.ndarray]) -> list[list[Face]]:
        results = []
        for image in images:
            found = self.api.detect_faces(image[..., ::-1].copy(), threshold=self.min_confidence, model=self.model)
            faces = []
            for f in (found.values() if isinstance(found, dict) else []):
                x1, y1, x2, y2 = (int(v) for v in f["facial_area"])
                eyes = sorted(tuple(map(float, f["landmarks"][k])) for k in ("left_eye", "right_eye"))
                faces.append(Face((x1, y1, x2 - x1, y2 - y1), float(f["score"]), *eyes))
            results.append(faces)
        return results


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def make_detector(name: str, cfg: CropConfig) -> Detector:
    """Build detector ``name`` (one of config.DETECTORS)."""
    if name == "mtcnn":
        return MtcnnDetector(cfg.min_confidence)
    if name == "haar":
        return HaarDetector(cfg.haar_cascade)
    if name == "retinaface":
        return RetinaFaceDetector(cfg.min_confidence)
    if name == "none":
        return NoDetector()
    raise KeyError(f"unknown detector '{name}'")


def best_face(faces: list[Face]) -> Face | None:
    """The most confident face, the largest among equally confident ones."""
    return max(faces, key=lambda f: (round(f.confidence, 2), f.area), default=None)


def crop_face(image: np.ndarray, face: Face, margin: float, align: bool) -> np.ndarray:
    """Cut ``face`` out of ``image`` with ``margin`` (fraction of the box on each side).

    With ``align`` and known eyes, the image is first rotated about the face centre so that
    the eyes are level.
    """
    x, y, w, h = face.box
    cx, cy = x + w / 2, y + h / 2
    if align and face.left_eye and face.right_eye:
        (lx, ly), (rx, ry) = face.left_eye, face.right_eye
        angle = math.degrees(math.atan2(ry - ly, rx - lx))
        rotation = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
        image = cv2.warpAffine(image, rotation, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REPLICATE)
    half_w, half_h = w * (0.5 + margin), h * (0.5 + margin)
    x0, x1 = max(int(cx - half_w), 0), min(int(cx + half_w), image.shape[1])
    y0, y1 = max(int(cy - half_h), 0), min(int(cy + half_h), image.shape[0])
    return image[y0:y1, x0:x1]
