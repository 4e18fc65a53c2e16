"""Throughput of the tf.data pipeline (memory-mapped .npy) vs the same model fitted on in-memory tensors.

Usage: python benchmarks/input_pipeline.py [data/splits/SAMPLE-CHILD] [epochs]
Prints training images per second for both, same model, batch size and preprocessing (no augmentation).
"""

import sys
import time
from pathlib import Path

import keras
import numpy as np

from fer_age.config import load_config
from fer_age.data import load_split, make_dataset
from fer_age.models import build_model, preprocessing_fn
from fer_age.train import resolved_hyperparameters


def fitted_images_per_second(fit_input, n_images: int, epochs: int, config, **fit_kwargs) -> float:
    keras.utils.set_random_seed(config.seed)
    model = build_model(config.model, config.head, config.img_size, len(config.labels), "none")
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(*fit_input, epochs=1, verbose=0, **fit_kwargs)  # warm-up: tracing
    started = time.perf_counter()
    model.fit(*fit_input, epochs=epochs, verbose=0, **fit_kwargs)
    return n_images * epochs / (time.perf_counter() - started)


def main() -> None:
    split_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "data/splits/SAMPLE-CHILD")
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    config = load_config()
    images, labels = load_split(split_dir, "train")
    preprocess = preprocessing_fn(config.model, "rescale")
    batch = resolved_hyperparameters(config)["batch_size"]
    pipeline = make_dataset(images, labels, batch, preprocess, training=True)
    tensors = (np.asarray(preprocess(np.asarray(images, np.float32))), labels)
    print(f"{len(labels)} images, {config.model} at {config.img_size} px, batch {batch}, {epochs} epochs")
    print(f"tf.data (memory-mapped): {fitted_images_per_second((pipeline,), len(labels), epochs, config):.1f} img/s")
    in_memory = fitted_images_per_second(tensors, len(labels), epochs, config, batch_size=batch, shuffle=True)
    print(f"in-memory tensors:       {in_memory:.1f} img/s")


if __name__ == "__main__":
    main()
