"""The paper's full matrix, planned: how long 6 datasets x 8 backbones x 2 heads at 224 px for 30 epochs take.

Usage: python benchmarks/plan_full_study.py [--benchmarks benchmarks/latest.json] [--gpu-img-s N] [--gpu-json F]

Per backbone, images to process = training images x epochs + validation and test passes; seconds = images
/ throughput. CPU throughput comes from the benchmark suite's ``train_images_per_second`` (224 px where
measured, else the 96 px figure scaled by pixel count); GPU throughput from ``benchmarks/gpu_check.py``'s
JSON (``--gpu-json``) or ``--gpu-img-s`` (ResNet50 images per second), scaled per backbone by its CPU
cost relative to ResNet50. An inference image costs a third of a training step.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# images per dataset (Angry/Fear/Happy/Sad): 6 x 1,300 gives the 2.3 million image-steps; use --sizes
STUDY_SIZES = {"CK": 1300, "DEFSS": 1300, "DEFSS18": 1300, "FACES": 1300, "MUG": 1300, "NIMH": 1300}
BACKBONES = ("mobilenetv2", "densenet121", "densenet201", "resnet50v2", "resnet101v2", "resnet152v2", "vgg16",
             "resnet50")
TRAIN_SHARE, VALID_SHARE, TEST_SHARE, EPOCHS, HEADS, SIZE = 0.6, 0.2, 0.2, 30, 2, 224
START_UP_S = 25  # process start, imports and model build per training run


def cpu_rate(rates: dict[str, float], model: str) -> float | None:
    """Images per second of ``model`` at 224 px on the benchmark's CPU (96 px figures scaled by pixel count)."""
    if f"{model}@{SIZE}" in rates:
        return rates[f"{model}@{SIZE}"]
    if f"{model}@96" in rates:
        return rates[f"{model}@96"] * (96 / SIZE) ** 2
    return None


def plan(rates: dict[str, float], gpu_resnet50: float, sizes: dict[str, int]) -> list[dict]:
    """Per backbone (both heads, every dataset): training image-steps and wall time on the CPU and one GPU."""
    total = sum(sizes.values())
    train = sum(TRAIN_SHARE * n * EPOCHS for n in sizes.values())  # training steps
    inference = sum(VALID_SHARE * n * EPOCHS for n in sizes.values()) + len(sizes) * TEST_SHARE * total
    steps = HEADS * (train + inference / 3)  # in training-step equivalents
    reference = cpu_rate(rates, "resnet50") or cpu_rate(rates, "resnet50v2")
    runs = len(sizes) * HEADS
    if reference is None:
        raise SystemExit("the benchmark JSON has no ResNet50 throughput: run benchmarks/run.py first")
    rows = []
    for model in BACKBONES:
        cpu = cpu_rate(rates, model)
        if cpu is None:
            continue
        gpu = gpu_resnet50 * cpu / reference
        rows.append({"model": model, "image_steps": HEADS * train,
                     "cpu_hours": (steps / cpu + runs * START_UP_S) / 3600,
                     "gpu_minutes": (steps / gpu + runs * START_UP_S) / 60})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", type=Path, default=Path(__file__).with_name("latest.json"))
    parser.add_argument("--gpu-img-s", type=float, default=1900.0,
                        help="ResNet50 training images/s on the GPU (default: about 20 minutes of the study's "
                             "2.3 million image-steps on an H100)")
    parser.add_argument("--gpu-json", type=Path, help="the JSON written by benchmarks/gpu_check.py")
    parser.add_argument("--sizes", type=json.loads, default=STUDY_SIZES, help="dataset -> images, as JSON")
    args = parser.parse_args()
    rates = json.loads(args.benchmarks.read_text())["train_images_per_second"]
    gpu = json.loads(args.gpu_json.read_text())["images_per_second"] if args.gpu_json else args.gpu_img_s
    rows = plan(rates, gpu, args.sizes)
    print(f"{len(args.sizes)} datasets ({sum(args.sizes.values())} images) x {len(rows)} backbones x {HEADS} heads, "
          f"{SIZE} px, {EPOCHS} epochs; GPU at {gpu:.0f} ResNet50 img/s")
    print("| backbone | image-steps | this CPU (hours) | one GPU (minutes) |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['image_steps'] / 1e6:.2f} M | {r['cpu_hours']:.1f} | {r['gpu_minutes']:.1f} |")
    total = {k: sum(r[k] for r in rows) for k in ("image_steps", "cpu_hours", "gpu_minutes")}
    print(f"| all | {total['image_steps'] / 1e6:.2f} M | {total['cpu_hours']:.1f} | {total['gpu_minutes']:.1f} |")
    missing = [m for m in BACKBONES if m not in {r["model"] for r in rows}]
    if missing:  # a partial matrix says so instead of a verdict
        print(f"not measured: {', '.join(missing)} (run benchmarks/run.py --only train without --quick); "
              f"the {len(rows)} measured backbones take {total['gpu_minutes']:.0f} minutes on one GPU")
        return
    verdict = "within" if total["gpu_minutes"] <= 45 else "over"
    print(f"full matrix on one GPU: {total['gpu_minutes']:.0f} minutes ({verdict} the 45-minute goal)")


if __name__ == "__main__":
    main()
