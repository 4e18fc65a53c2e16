"""GPU check: one backbone trained as the train stage trains it; images per second, the share of training time
the GPU waits on input, and the process start-up.

Usage: python benchmarks/gpu_check.py [--model resnet50] [--img-size 224] [--batch N] [--fine-tune-layers N]
       [--steps 300] [--processes N] [--json gpu_check.json]

As the train stage does: the registry's batch size and trainable layers unless given, op determinism on
(which also keeps XLA off), mixed precision on a GPU, uint8 batches from ``fer_age.modeling.inputs.make_dataset`` over
a memory-mapped .npy, augmentation and preprocessing on the device (``with_device_input``). Trains ``steps``
steps fed by that pipeline, then ``steps`` steps on one batch already on the device:
``input_wait = 1 - t(device batch) / t(pipeline)`` is the share of time the GPU waits for input.
``start_up_seconds``: from this script's start to the end of the warm-up steps (imports, GPU initialisation,
model build, tracing). ``--processes N`` runs N checks at once on the same GPU (as N ``dvc queue`` workers
would): images per second are all their images over the time from the first one's start to the last one's
end. Runs on a CPU too (slowly), for a dry run.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()  # before TensorFlow is imported: start-up counts from here

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402


def check(model_name: str, size: int, batch: int | None, steps: int, fine_tune_layers: int | None = None) -> dict:
    """Train ``model_name`` for ``steps`` steps fed by the pipeline and again on one batch on the device
    (``batch`` and ``fine_tune_layers`` None: the registry's, as the train stage uses them)."""
    from fer_age.runtime import import_tensorflow

    import_tensorflow()
    import keras
    import tensorflow as tf
    from run import memmapped_split  # the benchmark suite's, beside this script

    from fer_age.modeling.inputs import make_dataset, with_device_input
    from fer_age.modeling.models import build_model, preprocessing_fn
    from fer_age.registry import model_spec

    spec = model_spec(model_name)
    batch = batch or spec.batch_size
    fine_tune_layers = spec.fine_tune_layers if fine_tune_layers is None else fine_tune_layers
    tf.config.experimental.enable_op_determinism()
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")
    with memmapped_split(batch * min(steps, 50), size) as (images, labels):
        classifier = build_model(spec, "m2", size, ["A", "B", "C", "D"], "none", fine_tune_layers)
        model = with_device_input(classifier, preprocessing_fn(spec, "backbone"), seed=0, augment=True)
        model.compile(keras.optimizers.Adam(1e-4), "categorical_crossentropy")
        pipeline = make_dataset(images, labels, batch, None, 4, training=True).repeat()
        model.fit(pipeline, steps_per_epoch=5, epochs=1, verbose=0, shuffle=False)  # warm-up: tracing, autotune
        start_up = time.perf_counter() - STARTED
        started, window_start = time.perf_counter(), time.time()
        model.fit(pipeline, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
        fed, window = time.perf_counter() - started, [window_start, time.time()]
        on_device = tf.data.Dataset.from_tensors(next(iter(pipeline))).repeat()
        model.fit(on_device, steps_per_epoch=5, epochs=1, verbose=0, shuffle=False)
        started = time.perf_counter()
        model.fit(on_device, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
        compute = time.perf_counter() - started
    return {
        "device": gpus[0].name if gpus else "CPU",
        "model": model_name,
        "img_size": size,
        "batch": batch,
        "fine_tune_layers": fine_tune_layers,
        "steps": steps,
        "mixed_precision": bool(gpus),
        "start_up_seconds": start_up,
        "images_per_second": batch * steps / fed,
        "compute_images_per_second": batch * steps / compute,
        "input_wait": max(0.0, 1 - compute / fed),
        "fed_window": window,
    }


def concurrent(arguments: list[str], processes: int) -> dict:
    """``processes`` checks at once (one process each, as queue workers on one GPU), their rates added."""
    with tempfile.TemporaryDirectory() as tmp:
        outputs = [Path(tmp) / f"{k}.json" for k in range(processes)]
        running = [
            subprocess.Popen(
                [sys.executable, __file__, *arguments, "--json", str(out)], stdout=subprocess.DEVNULL, env=os.environ
            )
            for out in outputs
        ]
        if any(process.wait() != 0 for process in running):
            raise SystemExit("a concurrent check failed (see its output above)")
        runs = [json.loads(out.read_text()) for out in outputs]
    # all images of the fed phases over the time from the first one's start to the last one's end
    span = max(r["fed_window"][1] for r in runs) - min(r["fed_window"][0] for r in runs)
    images = sum(r["batch"] * r["steps"] for r in runs)
    return {
        "device": runs[0]["device"],
        "model": runs[0]["model"],
        "img_size": runs[0]["img_size"],
        "batch": runs[0]["batch"],
        "steps": runs[0]["steps"],
        "processes": processes,
        "images_per_second": images / span,
        "start_up_seconds": max(r["start_up_seconds"] for r in runs),
        "input_wait": max(r["input_wait"] for r in runs),
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--batch", type=int, help="default: the registry's batch size for the model")
    parser.add_argument("--fine-tune-layers", type=int, help="default: the registry's (all layers: a large number)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--processes", type=int, default=1, help="checks run at once on the same GPU")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.processes > 1:
        single = ["--model", args.model, "--img-size", str(args.img_size), "--steps", str(args.steps)]
        single += ["--batch", str(args.batch)] if args.batch else []
        single += ["--fine-tune-layers", str(args.fine_tune_layers)] if args.fine_tune_layers is not None else []
        result = concurrent(single, args.processes)
    else:
        result = check(args.model, args.img_size, args.batch, args.steps, args.fine_tune_layers)
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
