"""The model registry: ImageNet backbones from ``keras.applications`` plus a compact FER CNN.

Importing this module does not import TensorFlow; building a model does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class ModelSpec:
    """How to build one registry model and its defaults."""

    display_name: str  # as in the study's result keys, e.g. ResNet50V2
    application: str | None  # keras.applications constructor; None for the compact CNN
    preprocess_module: str | None  # keras.applications sub-module holding preprocess_input
    fine_tune_layers: int | None = 16  # last N base layers trainable; None: all
    head_layer: int = -3  # index of the base layer the head is attached to
    learning_rate: float = 1e-4
    epochs: int = 30
    batch_size: int = 20  # the original's
    pretrained: bool = True


MODELS: dict[str, ModelSpec] = {
    "compactcnn": ModelSpec("CompactCNN", None, None, fine_tune_layers=None, head_layer=-1,
                            learning_rate=1e-3, epochs=30, batch_size=8, pretrained=False),
    "mobilenetv2": ModelSpec("MobileNetV2", "MobileNetV2", "mobilenet_v2"),
    "densenet121": ModelSpec("DenseNet121", "DenseNet121", "densenet"),
    "densenet201": ModelSpec("DenseNet201", "DenseNet201", "densenet"),
    "resnet50": ModelSpec("ResNet50", "ResNet50", "resnet50"),
    "resnet50v2": ModelSpec("ResNet50V2", "ResNet50V2", "resnet_v2"),
    "resnet101v2": ModelSpec("ResNet101V2", "ResNet101V2", "resnet_v2"),
    "resnet152v2": ModelSpec("ResNet152V2", "ResNet152V2", "resnet_v2"),
    "vgg16": ModelSpec("VGG16", "VGG16", "vgg16", fine_tune_layers=3, head_layer=-2),
}
MODEL_NAMES = tuple(MODELS)


class WeightsUnavailableError(RuntimeError):
    """ImageNet weights could not be downloaded (offline machine)."""


def model_spec(name: str) -> ModelSpec:
    """The registry entry for ``name`` (lower case), or a clear error."""
    if name not in MODELS:
        raise KeyError(f"unknown model '{name}'; choose one of {', '.join(MODEL_NAMES)}")
    return MODELS[name]


def model_filename(model: str, head: str, dataset: str) -> str:
    """The study's file name for a trained model, e.g. ``ResNet50V2_m1_CK.h5``."""
    return f"{model_spec(model).display_name}_{head}_{dataset}.h5"


def preprocessing_fn(model: str, mode: str) -> Callable:
    """Map float images in [0, 255] to the model's input range.

    ``backbone``: the backbone's own ``preprocess_input`` (what ImageNet weights expect);
    ``rescale``: the original study's plain 1/255 scaling (also the compact CNN's own).
    """
    spec = model_spec(model)
    if mode == "rescale" or spec.preprocess_module is None:
        return lambda x: x / 255.0
    import keras

    module = getattr(keras.applications, spec.preprocess_module)
    return module.preprocess_input


def build_model(model: str, head: str, img_size: int, n_classes: int, weights: str = "imagenet",
                fine_tune_layers: int | None = None) -> keras.Model:
    """A registry backbone with head ``m1`` or ``m2``, frozen except its last N layers."""
    import keras

    spec = model_spec(model)
    base = _compact_base(img_size) if spec.application is None else _backbone(spec, img_size, weights)
    n_trainable = spec.fine_tune_layers if fine_tune_layers is None else fine_tune_layers
    if n_trainable is not None:
        for layer in base.layers:
            layer.trainable = False
        for layer in base.layers[len(base.layers) - n_trainable:] if n_trainable else []:
            if not isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = True
    features = base.layers[spec.head_layer].output
    outputs = _head(head, features, n_classes)
    return keras.Model(base.inputs, outputs, name=f"{spec.display_name}_{head}")


def _head(head: str, features, n_classes: int):
    from keras import layers

    if head == "m1":
        x = layers.Flatten()(features)
        x = layers.Dense(256, activation="relu")(x)
        x = layers.Dropout(0.5)(x)
    elif head == "m2":
        x = layers.GlobalAveragePooling2D()(features)
        x = layers.BatchNormalization()(x)
    else:
        raise KeyError(f"unknown head '{head}'; choose m1 or m2")
    return layers.Dense(n_classes, activation="softmax", dtype="float32")(x)


def _backbone(spec: ModelSpec, img_size: int, weights: str) -> keras.Model:
    import keras

    constructor = getattr(keras.applications, spec.application)
    shape = (img_size, img_size, 3)
    if weights == "none":
        return constructor(include_top=False, weights=None, input_shape=shape)
    if weights != "imagenet":
        if not Path(weights).is_file():
            raise FileNotFoundError(f"train.weights points to '{weights}', which does not exist")
        return constructor(include_top=False, weights=weights, input_shape=shape)
    try:
        return constructor(include_top=False, weights="imagenet", input_shape=shape)
    except Exception as err:  # Keras raises a bare Exception on "URL fetch failure"
        url = re.search(r"https?://\S+?\.h5", str(err))
        if url is None:
            raise
        filename = url.group(0).rsplit("/", 1)[-1]
        raise WeightsUnavailableError(
            f"Keras could not download the ImageNet weights of {spec.display_name}. "
            f"Download {url.group(0)} on a machine with internet and place it at "
            f"~/.keras/models/{filename} (or $KERAS_HOME/models/{filename}), "
            "or set 'train.weights: none' in params.yaml to train from scratch."
        ) from err


def _compact_base(img_size: int) -> keras.Model:
    """Three blocks of two 3x3 convolutions (BatchNorm, ReLU), max-pooling and dropout.

    Small enough to learn FER from a few hundred images without pretrained weights,
    in the spirit of the FER2013 literature's compact models (mini-Xception and similar).
    16/32/64 filters (about 70k weights) learn the demo as well as 24/48/96 in a quarter less time.
    """
    import keras
    from keras import layers

    inputs = keras.Input((img_size, img_size, 3))
    x = inputs
    for filters in (16, 32, 64):
        for _ in range(2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization(momentum=0.9)(x)  # few steps per epoch: settle fast
            x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(0.25)(x)
    return keras.Model(inputs, x, name="compact_fer_cnn")
