"""The emotion vocabulary: canonical names, their aliases, and the CK+ emotion codes."""

from __future__ import annotations

EMOTION_ALIASES = {
    "angry": "Angry",
    "anger": "Angry",
    "fear": "Fear",
    "fearful": "Fear",
    "afraid": "Fear",
    "scared": "Fear",
    "happy": "Happy",
    "happiness": "Happy",
    "joy": "Happy",
    "sad": "Sad",
    "sadness": "Sad",
    "disgust": "Disgust",
    "disgusted": "Disgust",
    "surprise": "Surprise",
    "surprised": "Surprise",
    "neutral": "Neutral",
    "contempt": "Contempt",
}
KNOWN_EMOTIONS = frozenset(EMOTION_ALIASES.values())

# Emotion/<S>/<seq>/*_emotion.txt in CK+ holds one of these codes
CKPLUS_CODES = {0: "Neutral", 1: "Angry", 2: "Contempt", 3: "Disgust", 4: "Fear", 5: "Happy", 6: "Sad", 7: "Surprise"}


def canonical_emotion(name: str) -> str:
    """Map an emotion name or alias (any case) onto its canonical spelling; unknown names are kept."""
    return EMOTION_ALIASES.get(name.strip().lower(), name.strip())
