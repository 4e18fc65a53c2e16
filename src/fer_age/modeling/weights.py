"""Whether a model's starting weights are on this machine, said before any work (``fer-age check``)."""

from __future__ import annotations

import os
from pathlib import Path

from fer_age.modeling.models import WeightsUnavailableError, fer2013_weights_file
from fer_age.registry import KERAS_WEIGHTS_URL, ModelSpec, imagenet_weights_file


def keras_models_dir() -> Path:
    """Where Keras keeps downloaded weights: ``$KERAS_HOME/models``, else ``~/.keras/models`` (as Keras decides)."""
    home = os.environ.get("KERAS_HOME") or str(Path.home() / ".keras")
    return Path(home).expanduser() / "models"


def missing_weights(spec: ModelSpec, weights: str, img_size: int) -> str:
    """Why the starting weights ``weights`` (already resolved from 'pretrained') are not on this machine, naming
    the file and where it must go; empty when they are here or nothing is to be loaded."""
    if weights == "fer2013":
        try:
            fer2013_weights_file()
        except WeightsUnavailableError as err:
            return str(err)
        return ""
    if weights != "imagenet" or not spec.imagenet_file:
        return ""
    address = imagenet_weights_file(spec, img_size)
    filename = address.rsplit("/", 1)[-1]
    places = [keras_models_dir() / filename, Path("/tmp/.keras/models") / filename]
    if any(place.is_file() for place in places):
        return ""
    return (
        f"the ImageNet weights of {spec.display_name} are not on this machine: training will try to download "
        f"{KERAS_WEIGHTS_URL}{address}; offline, download it on a machine with internet and place it at "
        f"{places[0]}, or set 'train.weights: none'"
    )
