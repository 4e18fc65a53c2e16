"""Raw dataset layout: ``data/raw/<DATASET>/<DATASET>_<Emotion>/`` image folders."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})

EMOTION_ALIASES = {
    "angry": "Angry", "anger": "Angry",
    "fear": "Fear", "fearful": "Fear", "afraid": "Fear", "scared": "Fear",
    "happy": "Happy", "happiness": "Happy", "joy": "Happy",
    "sad": "Sad", "sadness": "Sad",
    "disgust": "Disgust", "disgusted": "Disgust",
    "surprise": "Surprise", "surprised": "Surprise",
    "neutral": "Neutral", "contempt": "Contempt",
}


def canonical_emotion(name: str) -> str:
    """Map an emotion name or alias (any case) onto its canonical spelling."""
    return EMOTION_ALIASES.get(name.strip().lower(), name.strip())


def folder_emotion(folder: str, source: str) -> str:
    """The canonical emotion of a ``<SOURCE>_<Emotion>[_cropped]`` or ``<Emotion>`` folder."""
    name = re.sub(r"_cropped$", "", folder, flags=re.IGNORECASE)
    prefix = f"{source}_"
    if name.lower().startswith(prefix.lower()):
        name = name[len(prefix):]
    return canonical_emotion(name)


@dataclass(frozen=True)
class RawItem:
    """One file found in a raw dataset folder."""

    path: Path
    emotion: str  # canonical emotion of its folder
    label: int | None  # index into params labels; None when the emotion is not studied
    is_image: bool  # has an accepted image extension


def discover(root: Path, source: str, labels: list[str]) -> list[RawItem]:
    """Every file under the emotion folders of ``root``, sorted, with its label.

    Folders of emotions outside ``labels`` are returned with ``label=None`` so that the
    caller reports them rather than dropping them silently.
    """
    if not root.is_dir():
        raise FileNotFoundError(
            f"raw dataset folder '{root}' does not exist: put the images in "
            f"{root}/{source}_<Emotion>/ (or {root}/<Emotion>/) and run `dvc add {root}`")
    wanted = {canonical_emotion(label): i for i, label in enumerate(labels)}
    items = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        emotion = folder_emotion(folder.name, source)
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            items.append(RawItem(path, emotion, wanted.get(emotion),
                                 path.suffix.lower() in IMAGE_EXTENSIONS))
    return items


def subject_id(filename: str, pattern: str | None) -> str | None:
    """The subject id in ``filename`` by ``pattern`` (its ``subject`` group, else group 1)."""
    if pattern is None:
        return None
    match = re.search(pattern, filename)
    if match is None:
        return None
    return match.groupdict().get("subject") or match.group(1)
