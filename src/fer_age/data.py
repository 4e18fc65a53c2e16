"""``tf.data`` input pipeline over the memory-mapped .npy splits, with augmentation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf


def load_split(split_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``X`` (memory-mapped uint8) and ``y`` (int64) of one split, or a clear error."""
    x_path, y_path = split_dir / f"X_{split}.npy", split_dir / f"y_{split}.npy"
    for path in (x_path, y_path):
        if not path.is_file():
            raise FileNotFoundError(f"split file {path} is missing: run the split stage for this dataset")
    images = np.load(x_path, mmap_mode="r", allow_pickle=False)
    labels = np.load(y_path, allow_pickle=False)
    if len(images) == 0:
        raise ValueError(f"split {split_dir.name}/{split} is empty: the dataset has too few images")
    if len(images) != len(labels):
        raise ValueError(f"{x_path} holds {len(images)} images but {y_path} {len(labels)} labels")
    return images, labels


def augmenter(seed: int) -> Callable[[tf.Tensor], tf.Tensor]:
    """The original's augmentation: shift 0.2, horizontal flip, brightness x0.5-1.5."""
    import keras

    layers = keras.Sequential([
        keras.layers.RandomTranslation(0.2, 0.2, fill_mode="nearest", seed=seed),
        keras.layers.RandomFlip("horizontal", seed=seed + 1),
    ])

    def augment(images: tf.Tensor) -> tf.Tensor:
        images = layers(images, training=True)
        factor = tf.random.uniform([tf.shape(images)[0], 1, 1, 1], 0.5, 1.5, seed=seed + 2)
        return tf.clip_by_value(images * factor, 0.0, 255.0)

    return augment


def make_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, preprocess: Callable,
                 training: bool = False, augment: bool = False, seed: int = 42) -> tf.data.Dataset:
    """Batches of (preprocessed float32 images, int labels); shuffled and augmented when training.

    Images are gathered batch by batch from the (memory-mapped) array, so the whole set is
    never copied into RAM as floats.
    """
    height, width, channels = images.shape[1:]

    def gather(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(images[indices]), labels[indices].astype(np.int64)

    def load(indices: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x, y = tf.numpy_function(gather, [indices], (tf.uint8, tf.int64))
        x.set_shape([None, height, width, channels])
        y.set_shape([None])
        return tf.cast(x, tf.float32), y

    dataset = tf.data.Dataset.range(len(labels))
    if training:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if augment:
        augment_batch = augmenter(seed)
        dataset = dataset.map(lambda x, y: (augment_batch(x), y))
    dataset = dataset.map(lambda x, y: (preprocess(x), y), num_parallel_calls=tf.data.AUTOTUNE,
                          deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)
