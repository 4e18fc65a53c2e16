"""``tf.data`` input pipeline over the memory-mapped .npy splits, and the on-device input (augmentation,
preprocessing) of the model being fitted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from fer_age.contracts import array_paths, require
from fer_age.errors import FerAgeError


def load_split(split_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``X`` (memory-mapped uint8) and ``y`` (int64) of one split, or a clear error."""
    x_path, y_path = array_paths(split_dir, split)
    for path in (x_path, y_path):
        require(path, f"run the split stage for dataset '{split_dir.name}'")
    images = np.load(x_path, mmap_mode="r", allow_pickle=False)
    labels = np.load(y_path, allow_pickle=False)
    if len(images) == 0:
        raise FerAgeError(f"split {split_dir.name}/{split} is empty: the dataset has too few images")
    if len(images) != len(labels):
        raise FerAgeError(f"{x_path} holds {len(images)} images but {y_path} {len(labels)} labels")
    return images, labels


class StackedImages:
    """Several memory-mapped image arrays read as one, without copying them (pooled training)."""

    def __init__(self, arrays: list[np.ndarray]):
        self.arrays = arrays
        self.offsets = np.cumsum([0] + [len(a) for a in arrays])
        self.shape = (int(self.offsets[-1]), *arrays[0].shape[1:])
        self.dtype = arrays[0].dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, indices: np.ndarray | slice) -> np.ndarray:
        indices = np.arange(len(self))[indices] if isinstance(indices, slice) else np.asarray(indices)
        which = np.searchsorted(self.offsets, indices, side="right") - 1
        batch = np.empty((len(indices), *self.shape[1:]), self.dtype)
        for k in np.unique(which):
            chosen = which == k
            batch[chosen] = self.arrays[k][indices[chosen] - self.offsets[k]]
        return batch


def load_splits(split_dirs: list[Path], split: str) -> tuple[np.ndarray | StackedImages, np.ndarray]:
    """One split of one dataset, or of several read as one (same image size)."""
    parts = [load_split(d, split) for d in split_dirs]
    if len(parts) == 1:
        return parts[0]
    return StackedImages([x for x, _ in parts]), np.concatenate([y for _, y in parts])


class DeviceInput(keras.layers.Layer):
    """Raw uint8 batches to the model's input, on the device: the original's augmentation when training
    (shift 0.2, horizontal flip, brightness x0.5-1.5, optional rotation and zoom), then the model's preprocessing.

    keras-io's advice for GPUs: augmentation inside the model runs on the accelerator, synchronously with the
    training step, so the CPU only gathers uint8 batches (a quarter of float32's bytes to transfer). Used only
    by the model ``fit`` trains (``with_device_input``); the saved model takes preprocessed images as before.
    """

    def __init__(self, preprocess: Callable, seed: int, augment: bool, rotation: float = 0.0, zoom: float = 0.0):
        super().__init__(dtype="float32")
        self.preprocess = preprocess
        layers = []
        if augment:
            layers = [
                keras.layers.RandomTranslation(0.2, 0.2, fill_mode="nearest", seed=seed, dtype="float32"),
                keras.layers.RandomFlip("horizontal", seed=seed + 1, dtype="float32"),
            ]
            if rotation:
                layers.append(
                    keras.layers.RandomRotation(rotation, fill_mode="nearest", seed=seed + 3, dtype="float32")
                )
            if zoom:
                layers.append(keras.layers.RandomZoom(zoom, fill_mode="nearest", seed=seed + 4, dtype="float32"))
        self.augmentation = keras.Sequential(layers) if layers else None
        self.brightness_seed = keras.random.SeedGenerator(seed + 2)

    def build(self, input_shape):
        if self.augmentation is not None:
            self.augmentation.build(input_shape)

    def call(self, images, training=False):
        images = keras.ops.cast(images, "float32")
        if training and self.augmentation is not None:
            images = self.augmentation(images, training=True)
            factor = keras.random.uniform((keras.ops.shape(images)[0], 1, 1, 1), 0.5, 1.5, seed=self.brightness_seed)
            images = keras.ops.clip(images * factor, 0.0, 255.0)
        return self.preprocess(images)


def with_device_input(
    model: keras.Model, preprocess: Callable, seed: int, augment: bool, rotation: float = 0.0, zoom: float = 0.0
) -> keras.Model:
    """``model`` behind a ``DeviceInput``: the model to fit on raw uint8 batches (``make_dataset(..., None, ...)``).

    It shares ``model``'s weights (and has no others), so fitting it trains ``model``.
    """
    inputs = keras.Input(model.input_shape[1:], dtype="uint8", name="raw_images")
    device_input = DeviceInput(preprocess, seed, augment, rotation, zoom)
    return keras.Model(inputs, model(device_input(inputs)), name=f"{model.name}_fit")


def make_dataset(
    images: np.ndarray | StackedImages,
    labels: np.ndarray,
    batch_size: int,
    preprocess: Callable | None,
    n_classes: int,
    training: bool = False,
    seed: int = 42,
    sample_weights: np.ndarray | None = None,
    mixup: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
) -> tf.data.Dataset:
    """Batches of (images, one-hot labels[, sample weights]), shuffled when training; ``sample_weights`` holds
    one value per image (class and age-group weights, or GroupDRO's group index) and goes with it.

    ``mixup`` (training only) gives each batch's partners and mixing weights (``objectives.MixupPartners``): the
    images, their labels and their sample weights are mixed with the partners' (the images rounded back to uint8).
    ``preprocess`` None: the raw uint8 images, for a model with a ``DeviceInput``; else float32 images mapped by
    it. Images are gathered batch by batch from the (memory-mapped) array, so the whole set is never copied
    into RAM.
    """
    height, width, channels = images.shape[1:]
    weights = np.ones(len(labels), np.float32) if sample_weights is None else np.asarray(sample_weights, np.float32)
    eye = np.eye(n_classes, dtype=np.float32)

    def gather(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x, targets, w = np.asarray(images[indices]), eye[labels[indices]], weights[indices]
        if mixup is None:
            return x, targets, w
        partners, lam = mixup(indices)
        lam = lam.astype(np.float32)
        mixed = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * np.asarray(images[partners])
        targets = lam[:, None] * targets + (1 - lam[:, None]) * eye[labels[partners]]
        return np.rint(mixed).astype(np.uint8), targets, lam * w + (1 - lam) * weights[partners]

    def load(indices: tf.Tensor):
        x, targets, w = tf.numpy_function(gather, [indices], (tf.uint8, tf.float32, tf.float32))
        x.set_shape([None, height, width, channels])
        targets.set_shape([None, n_classes])
        w.set_shape([None])
        x = x if preprocess is None else preprocess(tf.cast(x, tf.float32))
        return (x, targets) if sample_weights is None else (x, targets, w)

    dataset = tf.data.Dataset.range(len(labels))
    if training:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def image_batches(images: np.ndarray, batch_size: int, preprocess: Callable) -> tf.data.Dataset:
    """Preprocessed float32 batches of ``images`` in order, for prediction."""
    return make_dataset(images, np.zeros(len(images), np.int64), batch_size, preprocess, 1).map(lambda x, y: x)
