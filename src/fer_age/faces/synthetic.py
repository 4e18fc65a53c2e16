"""Synthetic demo datasets: drawn faces in full scenes, one dataset per age group.

Each synthetic subject has a fixed identity (face shape, skin tone, hair, eye colour) and is
"photographed" with every emotion several times, at a random position, scale, tilt, lighting
and background. Emotions show in the brows, eyes and mouth; age shows in face shape and
feature size (children) or grey hair and wrinkles (older adults).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

SKIN_TONES = [(235, 200, 175), (224, 185, 150), (205, 160, 125), (180, 130, 95), (150, 105, 75), (115, 78, 55)]
HAIR_COLOURS = {
    "young": [(35, 25, 20), (70, 45, 25), (120, 80, 40), (190, 150, 90), (20, 20, 20)],
    "older": [(170, 170, 170), (200, 200, 195), (140, 140, 140), (225, 225, 220)],
}
IRIS_COLOURS = [(70, 45, 25), (40, 30, 20), (45, 70, 100), (50, 75, 50)]


@dataclass(frozen=True)
class Subject:
    """The fixed identity of one synthetic person."""

    index: int
    age_group: str
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    iris: tuple[int, int, int]
    width_ratio: float  # face width / face height
    eye_spacing: float
    hair_volume: float


def make_subject(index: int, age_group: str, rng: np.random.Generator) -> Subject:
    """Draw a random identity with the age group's cues."""
    hair = HAIR_COLOURS["older" if age_group == "older" else "young"]
    width = {"child": 0.86, "adult": 0.74, "older": 0.72}[age_group] + rng.uniform(-0.04, 0.04)
    return Subject(
        index,
        age_group,
        SKIN_TONES[rng.integers(len(SKIN_TONES))],
        hair[rng.integers(len(hair))],
        IRIS_COLOURS[rng.integers(len(IRIS_COLOURS))],
        width,
        rng.uniform(0.19, 0.23),
        rng.uniform(0.05, 0.15),
    )


def _shift(colour, delta: float) -> tuple[int, int, int]:
    red, green, blue = (int(np.clip(c * delta, 0, 255)) for c in colour[:3])
    return red, green, blue


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    a, b = rng.integers(30, 230, 3), rng.integers(30, 230, 3)
    t = np.linspace(0, 1, size)[:, None, None]
    if rng.random() < 0.5:
        t = t.transpose(1, 0, 2)
    image = (a * (1 - t) + b * t) * np.ones((size, size, 1))
    image = image.astype(np.uint8)
    for _ in range(rng.integers(2, 6)):  # furniture-like clutter
        colour = tuple(int(c) for c in rng.integers(20, 235, 3))
        p1 = rng.integers(0, size, 2)
        p2 = p1 + rng.integers(size // 10, size // 3, 2)
        cv2.rectangle(image, tuple(int(v) for v in p1), tuple(int(v) for v in p2), colour, -1)
    return cv2.GaussianBlur(image, (0, 0), 2)


def _draw_face(subject: Subject, emotion: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """An RGBA patch of ``size`` px holding the head, centred."""
    canvas = np.zeros((size, size, 4), np.uint8)
    c = size // 2
    h = int(size * 0.36)  # half face height
    w = int(h * subject.width_ratio)
    child, older = subject.age_group == "child", subject.age_group == "older"
    strength = rng.uniform(0.7, 1.2)  # expression intensity
    skin = subject.skin + (255,)
    hair = subject.hair + (255,)
    # hair behind the head, then neck, head and ears
    hv = subject.hair_volume
    cv2.ellipse(canvas, (c, c - int(h * 0.12)), (int(w * (1.12 + hv)), int(h * (1.02 + hv))), 0, 180, 360, hair, -1)
    cv2.rectangle(canvas, (c - w // 2, c + h // 2), (c + w // 2, size), _shift(skin, 0.85) + (255,), -1)
    for side in (-1, 1):
        cv2.ellipse(canvas, (c + side * w, c), (int(w * 0.14), int(h * 0.2)), 0, 0, 360, _shift(skin, 0.9) + (255,), -1)
    cv2.ellipse(canvas, (c, c), (w, h), 0, 0, 360, skin, -1)
    cv2.ellipse(canvas, (c, c - int(h * 0.7)), (int(w * 0.98), int(h * (0.3 + hv))), 0, 180, 360, hair, -1)
    # shading: darker cheek contour on one side
    cv2.ellipse(
        canvas,
        (c + int(w * 0.55), c + int(h * 0.1)),
        (int(w * 0.35), int(h * 0.6)),
        0,
        0,
        360,
        _shift(skin, 0.93) + (255,),
        -1,
    )
    ink = (25, 18, 15, 255)
    eye_y = c - int(h * (0.06 if child else 0.12))
    eye_dx = int(w * (subject.eye_spacing * 2.2))
    eye_rx = int(w * (0.18 if child else 0.16))
    eye_ry = int(eye_rx * {"Fear": 0.8, "Angry": 0.5, "Happy": 0.52, "Sad": 0.6}.get(emotion, 0.6))
    brow_y = eye_y - int(eye_rx * 1.5) - int(eye_rx * (0.6 * strength if emotion in ("Fear",) else 0))
    for side in (-1, 1):  # shaded eye sockets
        cv2.ellipse(
            canvas,
            (c + side * eye_dx, eye_y - eye_rx // 4),
            (int(eye_rx * 1.45), int(eye_rx * 1.05)),
            0,
            0,
            360,
            _shift(skin, 0.8) + (255,),
            -1,
        )
    for side in (-1, 1):
        ex = c + side * eye_dx
        cv2.ellipse(canvas, (ex, eye_y), (eye_rx, max(eye_ry, 2)), 0, 0, 360, (245, 245, 240, 255), -1)
        iris_r = int(eye_rx * (0.5 if emotion == "Fear" else 0.6))
        cv2.circle(canvas, (ex, eye_y), iris_r, subject.iris + (255,), -1)
        cv2.circle(canvas, (ex, eye_y), max(iris_r // 2, 1), ink, -1)
        cv2.ellipse(canvas, (ex, eye_y), (eye_rx, max(eye_ry, 2)), 0, 180, 360, ink, max(2, h // 25))
        if emotion == "Sad":  # drooping outer upper lid
            cv2.line(canvas, (ex, eye_y - eye_ry), (ex + side * eye_rx, eye_y - eye_ry // 3), ink, 2)
        # brows: inner end (towards the nose) raised or lowered by emotion
        tilt = {"Angry": -0.9, "Sad": 0.8, "Fear": 0.5, "Happy": 0.0}.get(emotion, 0.0) * strength
        inner = (ex - side * int(eye_rx * 1.1), brow_y - int(tilt * eye_rx))
        outer = (ex + side * int(eye_rx * 1.2), brow_y + int(tilt * eye_rx * 0.3))
        cv2.line(canvas, inner, outer, _shift(hair, 0.5) + (255,), max(3, h // 18))
        if older:  # crow's feet
            for k in (-1, 0, 1):
                start = (ex + side * int(eye_rx * 1.3), eye_y + k * eye_ry)
                cv2.line(
                    canvas,
                    start,
                    (start[0] + side * eye_rx // 2, start[1] + k * eye_rx // 3),
                    _shift(skin, 0.7) + (255,),
                    1,
                )
    # nose
    nose_len = int(h * (0.18 if child else 0.28))
    cv2.line(canvas, (c, eye_y + eye_rx), (c - int(w * 0.06), eye_y + eye_rx + nose_len), _shift(skin, 0.7) + (255,), 2)
    cv2.ellipse(
        canvas,
        (c, eye_y + eye_rx + nose_len),
        (int(w * 0.12), int(h * 0.04)),
        0,
        0,
        180,
        _shift(skin, 0.65) + (255,),
        2,
    )
    for side in (-1, 1):
        cv2.circle(
            canvas,
            (c + side * int(w * 0.07), eye_y + eye_rx + nose_len),
            max(2, h // 30),
            _shift(skin, 0.4) + (255,),
            -1,
        )
    # mouth
    my = c + int(h * (0.45 if child else 0.52))
    mw = int(w * (0.34 if child else 0.4))
    lip = (120, 40, 45, 255)
    if emotion == "Happy":
        cv2.ellipse(
            canvas, (c, my - int(h * 0.06)), (mw, int(h * 0.16 * strength)), 0, 0, 180, (250, 250, 250, 255), -1
        )
        cv2.ellipse(canvas, (c, my - int(h * 0.06)), (mw, int(h * 0.16 * strength)), 0, 0, 180, lip, 3)
        cv2.line(canvas, (c - mw, my - int(h * 0.06)), (c + mw, my - int(h * 0.06)), lip, 2)
    elif emotion == "Sad":
        cv2.ellipse(canvas, (c, my + int(h * 0.08)), (int(mw * 0.8), int(h * 0.1 * strength)), 0, 180, 360, lip, 4)
    elif emotion == "Angry":
        cv2.rectangle(canvas, (c - int(mw * 0.8), my - h // 25), (c + int(mw * 0.8), my + h // 25), lip, -1)
        cv2.line(
            canvas,
            (c - int(w * 0.12), eye_y - int(eye_rx * 0.9)),
            (c - int(w * 0.04), eye_y - int(eye_rx * 0.4)),
            _shift(skin, 0.7) + (255,),
            2,
        )  # frown line
    else:  # Fear: open, stretched mouth
        cv2.ellipse(canvas, (c, my), (int(mw * 0.9), int(h * 0.11 * strength)), 0, 0, 360, (60, 20, 25, 255), -1)
        cv2.ellipse(canvas, (c, my), (int(mw * 0.9), int(h * 0.11 * strength)), 0, 0, 360, lip, 2)
    if older:  # forehead wrinkles and nasolabial folds
        for k in range(3):
            y = brow_y - int(h * (0.08 + 0.07 * k))
            cv2.ellipse(
                canvas,
                (c, y + int(h * 0.1)),
                (int(w * 0.45), int(h * 0.1)),
                0,
                200,
                340,
                _shift(skin, 0.72) + (255,),
                1,
            )
        for side in (-1, 1):
            cv2.line(
                canvas,
                (c + side * int(w * 0.22), eye_y + eye_rx + nose_len),
                (c + side * int(mw * 1.15), my + int(h * 0.05)),
                _shift(skin, 0.72) + (255,),
                2,
            )
    blurred = cv2.GaussianBlur(canvas, (0, 0), size / 160)
    blurred[..., 3] = canvas[..., 3]
    return blurred


def render_scene(subject: Subject, emotion: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """An RGB ``size`` x ``size`` scene with the subject's face somewhere in it."""
    scene = _background(size, rng).astype(np.float32)
    patch_size = int(size * rng.uniform(0.55, 0.85))
    patch = _draw_face(subject, emotion, patch_size, rng)
    angle = rng.uniform(-8, 8)
    rotation = cv2.getRotationMatrix2D((patch_size / 2, patch_size / 2), angle, 1.0)
    patch = cv2.warpAffine(patch, rotation, (patch_size, patch_size), flags=cv2.INTER_LINEAR)
    x0 = int(rng.integers(0, size - patch_size + 1))
    y0 = int(rng.integers(0, size - patch_size + 1))
    alpha = patch[..., 3:4].astype(np.float32) / 255
    region = scene[y0 : y0 + patch_size, x0 : x0 + patch_size]
    scene[y0 : y0 + patch_size, x0 : x0 + patch_size] = region * (1 - alpha) + patch[..., :3] * alpha
    # directional lighting, sensor noise, slight blur
    light = np.linspace(rng.uniform(0.6, 1.0), rng.uniform(1.0, 1.3), size)
    scene *= light[None, :, None] if rng.random() < 0.5 else light[:, None, None]
    scene += rng.normal(0, rng.uniform(2, 8), scene.shape)
    scene = np.clip(scene, 0, 255).astype(np.uint8)
    return cv2.GaussianBlur(scene, (0, 0), rng.uniform(0.5, 1.2))


def name_seed(name: str) -> int:
    """A 64-bit seed derived from a dataset name (distinct for anagrams, unlike a byte sum)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def generate_dataset(
    out_dir: Path,
    name: str,
    age_group: str,
    labels: list[str],
    subjects: int,
    images_per_emotion: int,
    scene_size: int,
    seed: int,
) -> int:
    """Write ``<out_dir>/<name>_<Emotion>/<name>_s<NN>_<Emotion>_<k>.png``; returns the count."""
    # a per-dataset stream, so adding a dataset does not change the others
    rng = np.random.default_rng([seed, name_seed(name)])
    count = 0
    people = [make_subject(i, age_group, rng) for i in range(subjects)]
    for emotion in labels:
        folder = out_dir / f"{name}_{emotion}"
        folder.mkdir(parents=True, exist_ok=True)
        for person in people:
            for k in range(images_per_emotion):
                scene = render_scene(person, emotion, scene_size, rng)
                path = folder / f"{name}_s{person.index:02d}_{emotion}_{k}.png"
                cv2.imwrite(str(path), cv2.cvtColor(scene, cv2.COLOR_RGB2BGR))
                count += 1
    return count
