"""The model registry: every model the pipeline can train, its defaults and declared facts.

Pure data (no TensorFlow): ``config`` validates params against it, ``models`` builds from it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fer_age.errors import FerAgeError


class ModelError(FerAgeError, ValueError):
    """A model cannot be built as asked (unknown name, head or label)."""


@dataclass(frozen=True)
class ModelSpec:
    """How to build one registry model, its defaults and its Grad-CAM target layer."""

    display_name: str  # as in the study's result keys, e.g. ResNet50V2
    application: str | None  # keras.applications constructor; None for the project's own models
    preprocess_module: str | None  # keras.applications sub-module holding preprocess_input
    gradcam_layer: str | None  # name of the last convolutional feature map (the head's input)
    fine_tune_layers: int | None = 16  # last N base layers trainable; None: all
    head_layer: int = -3  # index of the base layer the head is attached to
    learning_rate: float = 1e-4
    epochs: int = 30
    batch_size: int = 20  # the original's
    soup: int = 1  # train.soup's default: fine-tuning runs combined into the model (1 = a single run)
    soup_recipe: str = "greedy"  # train.soup_recipe's default: how those runs are combined
    rotation: float = 0.0  # extra augmentation beyond the original's (fraction of a turn)
    zoom: float = 0.0
    weights: tuple[str, ...] = ("imagenet", "none")  # accepted train.weights (besides a file path)
    min_img_size: int = 32
    builtin_preprocessing: bool = False  # the model scales its own [0, 255] input
    default_head: bool = False  # has a classifier of its own (head 'default')
    name: str = ""  # the registry key (``model`` in params), filled in below
    imagenet_file: str = ""  # the no-top ImageNet weights file Keras downloads ({size}: MobileNetV2's input size)

    @property
    def own_head(self) -> str:
        """``head``'s default for this model: its own classifier where it has one, else ``m2``."""
        return "default" if self.default_head else "m2"

    @property
    def pretrained(self) -> bool:
        return self.weights[0] != "none"

    @property
    def fer2013_weights(self) -> bool:
        return "fer2013" in self.weights


MODELS: dict[str, ModelSpec] = {
    # 60 epochs: measured on real photos (benchmarks/real_photos.py, 3 seeds) test macro-F1 0.537 +- 0.062 against
    # 0.492 +- 0.025 with 30; rotation/zoom 0.1 kept the mean (0.542) with less spread but hurt the synthetic demo
    "compactcnn": ModelSpec(
        "CompactCNN",
        None,
        None,
        "block3_relu2",
        fine_tune_layers=None,
        head_layer=-1,
        learning_rate=1e-3,
        epochs=60,
        batch_size=8,
        weights=("none",),
        min_img_size=16,
    ),
    # 60 epochs (early stopping decides): with BatchNorm frozen, MUXDEV's runs kept epochs 22-28 of 30 (test
    # macro-F1 0.688 +- 0.035) and, given 60, stopped at 42-44 (0.696 +- 0.013); MUXAGEDEV's stop before 30.
    # An ensemble of 3 runs: on MUXAGEDEV, over either set of three splits, never below its runs' mean on a group
    "minixception": ModelSpec(
        "MiniXception",
        None,
        None,
        "add_4",
        fine_tune_layers=None,
        head_layer=-1,
        learning_rate=5e-4,
        epochs=60,
        batch_size=16,
        weights=("fer2013", "none"),
        min_img_size=16,
        builtin_preprocessing=True,
        default_head=True,
        soup=3,
        soup_recipe="ensemble",
    ),
    "mobilenetv2": ModelSpec(
        "MobileNetV2",
        "MobileNetV2",
        "mobilenet_v2",
        "Conv_1",
        imagenet_file="mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5",
    ),
    "densenet121": ModelSpec("DenseNet121", "DenseNet121", "densenet", "conv5_block16_concat"),
    "densenet201": ModelSpec("DenseNet201", "DenseNet201", "densenet", "conv5_block32_concat"),
    "resnet50": ModelSpec("ResNet50", "ResNet50", "resnet50", "conv5_block3_3_bn"),
    "resnet50v2": ModelSpec("ResNet50V2", "ResNet50V2", "resnet_v2", "conv5_block3_out"),
    "resnet101v2": ModelSpec("ResNet101V2", "ResNet101V2", "resnet_v2", "conv5_block3_out"),
    "resnet152v2": ModelSpec("ResNet152V2", "ResNet152V2", "resnet_v2", "conv5_block3_out"),
    "vgg16": ModelSpec("VGG16", "VGG16", "vgg16", "block5_conv3", fine_tune_layers=3, head_layer=-2),
}
KERAS_WEIGHTS_FOLDERS = {"densenet": "densenet", "vgg16": "vgg16"}  # under keras-applications/; resnet/ otherwise
MODELS = {  # Keras' own file names (keras/src/applications/<module>.py), checked against Keras by a test
    name: replace(
        spec,
        imagenet_file=spec.imagenet_file
        or f"{KERAS_WEIGHTS_FOLDERS.get(spec.preprocess_module or '', 'resnet')}/"
        f"{name}_weights_tf_dim_ordering_tf_kernels_notop.h5",
    )
    if spec.application
    else spec
    for name, spec in MODELS.items()
}
MODELS = {name: replace(spec, name=name) for name, spec in MODELS.items()}
MODEL_NAMES = tuple(MODELS)


def model_spec(name: str) -> ModelSpec:
    """The registry entry for ``name`` (lower case), or a clear error."""
    if name not in MODELS:
        raise ModelError(f"unknown model '{name}'; choose one of {', '.join(MODEL_NAMES)}")
    return MODELS[name]


def model_filename(model: str, head: str, dataset: str) -> str:
    """The study's file name for a trained model, e.g. ``ResNet50V2_m1_CK.h5``."""
    return f"{model_spec(model).display_name}_{head}_{dataset}.h5"


def preprocessing_mode(spec: ModelSpec, requested: str) -> str:
    """``backbone`` or ``rescale`` as asked for an ImageNet backbone; the model's own mode otherwise."""
    if spec.builtin_preprocessing:
        return "builtin"
    return "rescale" if spec.preprocess_module is None else requested


def serving_preprocessing(spec: ModelSpec, mode: str) -> str:
    """What the MLflow model's code applies before the network: the keras.applications module for ``backbone``,
    else the mode itself (``rescale``, ``builtin``)."""
    module = spec.preprocess_module
    return module if mode == "backbone" and module is not None else mode


KERAS_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
MOBILENET_SIZES = (96, 128, 160, 192, 224)  # the input sizes MobileNetV2 has ImageNet weights for


def imagenet_weights_file(spec: ModelSpec, img_size: int) -> str:
    """The file Keras downloads for ``spec``'s ImageNet weights (no top) at input size ``img_size``, as
    ``<folder>/<file name>`` under Keras' download address (``KERAS_WEIGHTS_URL``)."""
    size = img_size if img_size in MOBILENET_SIZES else 224  # Keras' own fallback
    return spec.imagenet_file.format(size=size)
