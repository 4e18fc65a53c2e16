"""GPU check: one backbone with mixed precision through the project's tf.data pipeline; images per second and
the share of training time the GPU waits on input.

Usage: python benchmarks/gpu_check.py [--model resnet50] [--img-size 224] [--batch 64] [--steps 300]
       [--json gpu_check.json]

Trains ``steps`` steps twice: once fed by ``fer_age.data.make_dataset`` over a memory-mapped .npy (as the
train stage is), once on a batch already on the device. ``input_wait = 1 - t(device batch) / t(pipeline)``
is the share of time the accelerator waits for input. Runs on a CPU too (slowly), for a dry run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from fer_age.data import make_dataset
    from fer_age.models import build_model, preprocessing_fn

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")
    n, size = args.batch * min(args.steps, 50), args.img_size
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "X.npy"
        np.save(path, rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8))
        images, labels = np.load(path, mmap_mode="r"), rng.integers(0, 4, n)
        model = build_model(args.model, "m2", size, ["A", "B", "C", "D"], "none", fine_tune_layers=100_000)
        model.compile(keras.optimizers.Adam(1e-4), "categorical_crossentropy")
        preprocess = preprocessing_fn(args.model, "backbone")
        pipeline = make_dataset(images, labels, args.batch, preprocess, 4, training=True, augment=True).repeat()
        model.fit(pipeline, steps_per_epoch=5, epochs=1, verbose=0)  # warm-up: tracing, autotune
        started = time.perf_counter()
        model.fit(pipeline, steps_per_epoch=args.steps, epochs=1, verbose=0)
        fed = time.perf_counter() - started
        batch = next(iter(pipeline))
        on_device = tf.data.Dataset.from_tensors(batch).repeat()
        model.fit(on_device, steps_per_epoch=5, epochs=1, verbose=0)
        started = time.perf_counter()
        model.fit(on_device, steps_per_epoch=args.steps, epochs=1, verbose=0)
        compute = time.perf_counter() - started
    result = {"device": gpus[0].name if gpus else "CPU", "model": args.model, "img_size": size, "batch": args.batch,
              "steps": args.steps, "mixed_precision": bool(gpus),
              "images_per_second": args.batch * args.steps / fed,
              "compute_images_per_second": args.batch * args.steps / compute,
              "input_wait": max(0.0, 1 - compute / fed)}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    from fer_age.runtime import import_tensorflow

    import_tensorflow()
    main()
