"""Face images: reading any image file, face detectors (retinaface, mtcnn, haar, none) behind one
batch interface, choosing a usable detection, and cutting out the face as the models see it.

Every detector takes a list of RGB uint8 images and returns, per image, the faces it found.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from fer_age.config import CropConfig
from fer_age.errors import FerAgeError
from fer_age.faces.cropping import Face, usable_faces

HAAR_FILE = "haarcascade_frontalface_default.xml"
PLAIN_HAAR_FRACTION = 1 / 7  # smallest face side searched, of the shorter image side (50 px of 350: fer's own)
BUCKET = 64  # MTCNN batches hold images padded to the same multiple of this many pixels


class DetectorUnavailableError(FerAgeError, RuntimeError):
    """A detector cannot run here (missing weights or cascade file)."""


class Detector(Protocol):
    name: str

    def detect(self, images: list[np.ndarray]) -> list[list[Face]]: ...


class NoDetector:
    """For already-cropped datasets (e.g. CK+48): the whole image is the face."""

    name = "none"

    def detect(self, images: list[np.ndarray]) -> list[list[Face]]:
        return [[Face((0, 0, im.shape[1], im.shape[0]), 1.0)] for im in images]


class MtcnnDetector:
    """MTCNN (the ``mtcnn`` package, weights shipped in its wheel), in batches of same-shape images.

    MTCNN pads a mixed batch to its largest image and builds its scale pyramid over every image's
    scales, so what it finds in an image would depend on the batch around it. Here every image is
    padded (bottom and right, mid-grey) to its own bucket shape, the next multiple of ``BUCKET``
    pixels, and batched only with images of that shape: the faces found in an image depend on that
    image alone, whatever ``batch_size`` is.
    """

    name = "mtcnn"

    def __init__(self, min_confidence: float, batch_size: int = 16):
        import mtcnn.utils.bboxes
        from mtcnn import MTCNN

        # mtcnn 1.0 orders proposals with an unstable sort over the whole batch, so boxes of equal score
        # in one image came out in an order that depended on the other images: a stable sort keeps each
        # image's own order (identical results whatever the batch holds)
        mtcnn.utils.bboxes.sort_by_scores = _stable_sort_by_scores
        self.min_confidence = min_confidence
        self.batch_size = batch_size
        self.model = MTCNN(device="CPU:0" if not _has_gpu() else "GPU:0")

    def detect(self, images: list[np.ndarray]) -> list[list[Face]]:
        results: list[list[Face]] = [[] for _ in images]
        buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, image in enumerate(images):
            buckets[bucket_shape(image.shape)].append(i)
        for shape, members in sorted(buckets.items()):
            for start in range(0, len(members), self.batch_size):
                chunk = members[start : start + self.batch_size]
                found = self.model.detect_faces([pad_to(images[i], shape) for i in chunk])
                for i, faces in zip(chunk, found):
                    results[i] = [_mtcnn_face(f) for f in faces if f["confidence"] >= self.min_confidence]
        return results


def _stable_sort_by_scores(tensor: np.ndarray, scores: np.ndarray, ascending: bool = True) -> np.ndarray:
    return tensor[np.argsort(scores if ascending else -scores, kind="stable")]


def bucket_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """Height and width rounded up to the next multiple of ``BUCKET``."""
    height, width = (-(-side // BUCKET) * BUCKET for side in shape[:2])
    return height, width


def pad_to(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``image`` padded at the bottom and right with mid-grey to ``shape`` (coordinates unchanged)."""
    height, width = image.shape[:2]
    return cv2.copyMakeBorder(
        image, 0, shape[0] - height, 0, shape[1] - width, cv2.BORDER_CONSTANT, value=(127, 127, 127)
    )


def _mtcnn_face(found: dict) -> Face:
    x, y, w, h = (int(v) for v in found["box"])
    points = found.get("keypoints", {})
    # mtcnn names eyes from the viewer's side; keep image-left as left_eye
    eyes = sorted([tuple(map(float, points[k])) for k in ("left_eye", "right_eye") if k in points])
    return quantized(Face((x, y, w, h), float(found["confidence"]), *(eyes if len(eyes) == 2 else (None, None))))


def quantized(face: Face) -> Face:
    """``face`` with confidence to 2 decimals and eyes to 0.1 px: the last bits of a detector's floats vary
    with batch size and CPU, and should not change a crop."""

    def point(p):
        return None if p is None else (round(p[0], 1), round(p[1], 1))

    return replace(
        face, confidence=round(face.confidence, 2), left_eye=point(face.left_eye), right_eye=point(face.right_eye)
    )


class HaarDetector:
    """OpenCV's frontal-face Haar cascade: one pass (``minNeighbors`` 5, as the ``fer`` package), or with
    ``confirm`` the original study's (``minNeighbors`` 10, and a box must be re-detected inside itself)."""

    name = "haar"

    def __init__(self, cascade_path: str | None, confirm: bool = False, min_face: int = 20):
        self.confirm, self.min_face = confirm, min_face
        path = Path(cascade_path) if cascade_path else _bundled_cascade()
        if path is None or not path.is_file():
            raise DetectorUnavailableError(
                f"Haar cascade file not found ({path or HAAR_FILE}). Install an OpenCV 4.x wheel "
                "(opencv-contrib-python-headless<5 ships it in cv2.data), or download "
                f"{HAAR_FILE} from the OpenCV repository (data/haarcascades/) and set "
                "'crop.haar_cascade' in params.yaml to its path."
            )
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise DetectorUnavailableError(f"OpenCV could not load the Haar cascade {path}")

    def _find(self, gray: np.ndarray, min_fraction: float) -> list[tuple[int, int, int, int]]:
        side = max(int(min(gray.shape) * min_fraction), 20 if self.confirm else self.min_face)
        neighbours = 10 if self.confirm else 5
        boxes = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=neighbours, minSize=(side, side))
        return [(int(x), int(y), int(w), int(h)) for x, y, w, h in boxes]

    def detect(self, images: list[np.ndarray]) -> list[list[Face]]:
        results = []
        for image in images:
            gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
            faces = []
            for x, y, w, h in self._find(gray, 1 / 6 if self.confirm else PLAIN_HAAR_FRACTION):
                if not self.confirm or self._find(gray[y : y + h, x : x + w], 1 / 2):
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
                f"detector in 'crop.detectors'. Cause: {err}"
            ) from err

    def detect(self, images: list[np.ndarray]) -> list[list[Face]]:
        results = []
        for image in images:
            found = self.api.detect_faces(image[..., ::-1].copy(), threshold=self.min_confidence, model=self.model)
            faces = []
            for f in found.values() if isinstance(found, dict) else []:
                x1, y1, x2, y2 = (int(v) for v in f["facial_area"])
                left, right = sorted(
                    (float(f["landmarks"][k][0]), float(f["landmarks"][k][1])) for k in ("left_eye", "right_eye")
                )
                faces.append(quantized(Face((x1, y1, x2 - x1, y2 - y1), float(f["score"]), left, right)))
            results.append(faces)
        return results


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def make_detector(name: str, cfg: CropConfig) -> Detector:
    """Build detector ``name`` (one of config.DETECTORS)."""
    if name == "mtcnn":
        return MtcnnDetector(cfg.min_confidence, cfg.batch_size)
    if name == "haar":
        return HaarDetector(cfg.haar_cascade, cfg.haar_confirm, cfg.min_face)
    if name == "retinaface":
        return RetinaFaceDetector(cfg.min_confidence)
    if name == "none":
        return NoDetector()
    raise KeyError(f"unknown detector '{name}'")


def _downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    scale = max_side / max(image.shape[:2])
    if scale >= 1:
        return image, 1.0
    size = (max(int(image.shape[1] * scale), 1), max(int(image.shape[0] * scale), 1))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def _rescale(face: Face, factor: float) -> Face:
    if factor == 1.0:
        return face

    def point(p):
        return None if p is None else (p[0] * factor, p[1] * factor)

    x, y, w, h = (int(round(v * factor)) for v in face.box)
    return Face((x, y, w, h), face.confidence, point(face.left_eye), point(face.right_eye))


FaceFound = tuple[list[Face], str, str]  # the usable faces (best first), their detector, earlier rejections


def find_faces(images: list[np.ndarray], detectors: list[Detector], cfg: CropConfig) -> list[FaceFound]:
    """Per image: its usable faces (best first), the detector that found them, and why earlier detections were
    rejected.

    Detectors are tried in order; an image no detector finds a usable face in gets ([], "", reasons).
    """
    results: list[FaceFound] = [([], "", "")] * len(images)
    reasons: list[list[str]] = [[] for _ in images]
    pending = list(range(len(images)))
    for detector in detectors:
        if not pending:
            break
        small = [_downscale(images[i], cfg.max_side) for i in pending]
        found = detector.detect([s for s, _ in small])
        still = []
        for i, (_, scale), faces in zip(pending, small, found):
            height, width = images[i].shape[:2]
            usable, reason = usable_faces([_rescale(f, 1 / scale) for f in faces], height, width, cfg.min_face)
            if usable:
                results[i] = (usable, detector.name, "; ".join(reasons[i]))
            else:
                reasons[i].append(f"{detector.name}: {reason}")
                still.append(i)
        pending = still
    for i in pending:
        results[i] = ([], "", "; ".join(reasons[i]))
    return results
