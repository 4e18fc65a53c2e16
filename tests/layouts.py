"""Small raw datasets in the layouts real FER datasets ship in, drawn with the synthetic face generator."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fer_age.faces.synthetic import make_subject, render_scene

CKPLUS_CODES = {"Angry": 1, "Disgust": 3, "Fear": 4, "Happy": 5, "Sad": 6, "Surprise": 7}
FACES_CODES = {"Angry": "a", "Disgust": "d", "Fear": "f", "Happy": "h", "Neutral": "n", "Sad": "s"}
FACES_PATTERN = r"^(?P<subject>\d+)_(?P<age>[ymo])_[mf]_(?P<emotion>[adfhns])_[ab]\.jpg$"


def _write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def _scene(subject, emotion: str, rng) -> np.ndarray:
    drawn = emotion if emotion in ("Angry", "Fear", "Happy", "Sad") else "Neutral"
    return render_scene(subject, drawn, 160, rng)


def ckplus(root: Path, subjects: int = 6, frames: int = 3, seed: int = 1) -> None:
    """``cohn-kanade-images/S###/###/*.png`` with ``Emotion/`` label files; one unlabelled sequence each."""
    rng = np.random.default_rng(seed)
    for s in range(subjects):
        person, name = make_subject(s, "adult", rng), f"S{s + 1:03d}"
        for k, (emotion, code) in enumerate([*CKPLUS_CODES.items(), ("Happy", None)], start=1):
            seq = f"{k:03d}"
            for f in range(1, frames + 1):
                _write(
                    root / "cohn-kanade-images" / name / seq / f"{name}_{seq}_{f:08d}.png", _scene(person, emotion, rng)
                )
            if code is not None:
                label = root / "Emotion" / name / seq / f"{name}_{seq}_{frames:08d}_emotion.txt"
                label.parent.mkdir(parents=True, exist_ok=True)
                label.write_text(f"   {code:.7e}\n")


def faces(root: Path, subjects: int = 12, seed: int = 2) -> None:
    """FACES names: ``<subject>_<y|m|o>_<f|m>_<emotion code>_<a|b>.jpg``, young and older people in one folder."""
    rng = np.random.default_rng(seed)
    for s in range(subjects):
        older = s % 2 == 1
        person = make_subject(s, "older" if older else "adult", rng)
        for emotion, code in FACES_CODES.items():
            _write(root / f"{s + 1:03d}_{'o' if older else 'y'}_f_{code}_a.jpg", _scene(person, emotion, rng))


def csv_described(root: Path, subjects: int = 6, seed: int = 3) -> None:
    """Files in one folder, labels in ``labels.csv`` (including emotions outside the study's four)."""
    rng = np.random.default_rng(seed)
    rows = ["path,emotion,subject,age_group"]
    for s in range(subjects):
        person = make_subject(s, "child", rng)
        for emotion in ("anger", "fear", "happiness", "sadness", "Disgust", "Neutral", "Surprise", "Contempt"):
            path = f"img/{s:02d}_{emotion.lower()}.png"
            _write(root / path, _scene(person, emotion.capitalize(), rng))
            rows.append(f"{path},{emotion},kid{s:02d},child")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")


def layout_params() -> dict:
    """``datasets`` entries for the three layouts above."""
    return {
        "CKP": {"raw": "CKP", "layout": "ckplus", "age_group": "adult", "peak_frames": 2},
        "FACES": {
            "raw": "FACES",
            "layout": "pattern",
            "pattern": FACES_PATTERN,
            "emotion_codes": {v: k for k, v in FACES_CODES.items()},
            "age_codes": {"y": "adult", "m": "adult", "o": "older"},
        },
        "KIDS": {"raw": "KIDS", "layout": "csv", "labels_file": "labels.csv", "age_group": "child"},
    }


def write_all(raw: Path) -> None:
    ckplus(raw / "CKP")
    faces(raw / "FACES")
    csv_described(raw / "KIDS")
