"""The paper's full matrix, planned: how long 6 datasets x 8 backbones x 2 heads at 224 px for 30 epochs take.

Usage: python benchmarks/plan_full_study.py [--benchmarks benchmarks/latest.json] [--gpu-img-s N]
       [--gpu-json F [F ...]] [--gpu-init-s S] [--workers 1 2 3 4]

Per backbone, images to process = training images x epochs + validation and test passes; seconds = images
/ throughput. CPU throughput comes from the benchmark suite's ``train_images_per_second`` (224 px where
measured, else the 96 px figure scaled by pixel count). GPU throughput comes from ``benchmarks/gpu_check.py``'s
JSONs (``--gpu-json``, one per backbone checked); an unchecked backbone gets ResNet50's (``--gpu-img-s``
where no backbone is checked) scaled by its CPU cost relative to ResNet50. Every rate is capped by what the
input pipeline delivers (the suite's ``input_feed_images_per_second``, one per process). An inference
image costs a third of a training step.

Start-up is paid by every process: per experiment (one backbone and head, ``dvc exp run --queue -S ...``)
one train stage per dataset, evaluate and explain. Its figure is the backbone's GPU check's measured
``start_up_seconds``, else the suite's ``start_up_seconds`` (imports, build, first step's tracing on the
CPU) plus ``--gpu-init-s`` (CUDA and cuDNN set-up). With ``dvc queue start -j N`` on one GPU, one worker's
start-up overlaps the others' training: the wall time is about max(GPU work, (GPU work + start-ups) / N),
an ideal overlap that assumes the GPU's memory holds N models.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# images per dataset (Angry/Fear/Happy/Sad): 6 x 1,300 gives the 2.3 million image-steps; use --sizes
STUDY_SIZES = {"CK": 1300, "DEFSS": 1300, "DEFSS18": 1300, "FACES": 1300, "MUG": 1300, "NIMH": 1300}
BACKBONES = (
    "mobilenetv2",
    "densenet121",
    "densenet201",
    "resnet50v2",
    "resnet101v2",
    "resnet152v2",
    "vgg16",
    "resnet50",
)
TRAIN_SHARE, VALID_SHARE, TEST_SHARE, EPOCHS, HEADS, SIZE = 0.6, 0.2, 0.2, 30, 2, 224
FALLBACK_START_UP_S = 25  # per process, where the benchmark JSON has no start-up figure for the backbone
GOAL_MINUTES, GOAL_BUSY = 45, 0.9


def measured(figures: dict[str, float], model: str, scale_by_pixels: bool) -> float | None:
    """A benchmark figure of ``model`` at 224 px, else its 96 px figure (throughput scaled by pixel count)."""
    if f"{model}@{SIZE}" in figures:
        return figures[f"{model}@{SIZE}"]
    if f"{model}@96" in figures:
        return figures[f"{model}@96"] * ((96 / SIZE) ** 2 if scale_by_pixels else 1)
    return None


def plan(
    rates: dict[str, float],
    gpu_resnet50: float,
    sizes: dict[str, int],
    start_up: dict[str, float] | None = None,
    gpu_init_s: float = 10.0,
    feed_img_s: float | None = None,
    gpu_checks: list[dict] | None = None,
) -> list[dict]:
    """Per backbone (both heads, every dataset): image-steps, hours on the benchmark's CPU (one process after
    another) and, on one GPU, the images per second and minutes of process start-up.

    A backbone with a GPU check (``gpu_checks``: benchmarks/gpu_check.py's JSONs) takes its measured rate and
    start-up; the others are scaled from ResNet50's GPU rate (measured if checked, else from any checked
    backbone, else ``gpu_resnet50``) by their CPU cost, with the CPU start-up plus ``gpu_init_s``.
    """
    start_up, checked = start_up or {}, {c["model"]: c for c in gpu_checks or []}
    total = sum(sizes.values())
    train = sum(TRAIN_SHARE * n * EPOCHS for n in sizes.values())  # training steps
    inference = sum(VALID_SHARE * n * EPOCHS for n in sizes.values()) + len(sizes) * TEST_SHARE * total
    steps = HEADS * (train + inference / 3)  # in training-step equivalents
    reference = measured(rates, "resnet50", True) or measured(rates, "resnet50v2", True)
    if reference is None:
        raise SystemExit("the benchmark JSON has no ResNet50 throughput: run benchmarks/run.py first")
    scalable = [m for m in checked if measured(rates, m, True)]
    if "resnet50" in checked:
        gpu_resnet50 = checked["resnet50"]["images_per_second"]
    elif scalable:
        gpu_resnet50 = checked[scalable[0]]["images_per_second"] * reference / measured(rates, scalable[0], True)
    processes = HEADS * (len(sizes) + 2)  # per head: a train stage per dataset, evaluate, explain
    rows = []
    for model in BACKBONES:
        cpu = measured(rates, model, True)
        if cpu is None:
            continue
        cpu_start_up = measured(start_up, model, False)
        if model in checked:  # fed by the pipeline; and on a batch already on the device (the GPU's own rate)
            gpu, per_process = checked[model]["images_per_second"], checked[model]["start_up_seconds"]
            computing = checked[model].get("compute_images_per_second", gpu)
        else:
            gpu = computing = gpu_resnet50 * cpu / reference
            per_process = FALLBACK_START_UP_S if cpu_start_up is None else cpu_start_up + gpu_init_s
        rows.append(
            {
                "model": model,
                "image_steps": HEADS * train,
                "gpu_img_s": gpu,
                "gpu_compute_img_s": computing,
                "gpu_measured": model in checked,
                "cpu_hours": (steps / cpu + processes * (cpu_start_up or FALLBACK_START_UP_S)) / 3600,
                "gpu_steps": steps,
                "feed_img_s": feed_img_s,
                "start_up_minutes": processes * per_process / 60,
                "start_up_assumed": model not in checked and cpu_start_up is None,
            }
        )
    return rows


def schedule(rows: list[dict], workers: int) -> dict:
    """Minutes of the whole matrix on one GPU with ``workers`` queue workers, and the share of it the GPU works."""

    def rate(r: dict) -> float:  # each worker's pipeline feeds the GPU; together at most the GPU's own rate
        return r["gpu_img_s"] if r["feed_img_s"] is None else min(r["gpu_img_s"], workers * r["feed_img_s"])

    work = sum(r["gpu_steps"] / rate(r) for r in rows) / 60  # the GPU computing or waiting for input
    computing = sum(r["gpu_steps"] / max(r["gpu_compute_img_s"], r["gpu_img_s"]) for r in rows) / 60
    start_up = sum(r["start_up_minutes"] for r in rows)
    wall = max(work, (work + start_up) / workers)
    return {
        "workers": workers,
        "gpu_work_minutes": work,
        "start_up_minutes": start_up,
        "minutes": wall,
        "gpu_busy": computing / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", type=Path, default=Path(__file__).with_name("latest.json"))
    parser.add_argument(
        "--gpu-img-s",
        type=float,
        default=1900.0,
        help="ResNet50 training images/s on the GPU (default: about 20 minutes of the study's "
        "2.3 million image-steps on an H100)",
    )
    parser.add_argument(
        "--gpu-json",
        type=Path,
        nargs="+",
        default=[],
        help="JSONs written by benchmarks/gpu_check.py (one backbone each)",
    )
    parser.add_argument(
        "--gpu-init-s",
        type=float,
        default=10.0,
        help="seconds a process spends setting up the GPU, added to the CPU start-up (assumed)",
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3, 4], help="dvc queue workers to plan")
    parser.add_argument("--sizes", type=json.loads, default=STUDY_SIZES, help="dataset -> images, as JSON")
    args = parser.parse_args()
    bench = json.loads(args.benchmarks.read_text())
    checks = [json.loads(path.read_text()) for path in args.gpu_json]
    feed = bench.get("input_feed_images_per_second", {}).get("img_s")
    rows = plan(
        bench["train_images_per_second"],
        args.gpu_img_s,
        args.sizes,
        bench.get("start_up_seconds"),
        args.gpu_init_s,
        feed,
        checks,
    )
    print(
        f"{len(args.sizes)} datasets ({sum(args.sizes.values())} images) x {len(rows)} backbones x {HEADS} heads, "
        f"{SIZE} px, {EPOCHS} epochs; GPU checks: {', '.join(c['model'] for c in checks) or 'none'} (else "
        f"{args.gpu_img_s:.0f} ResNet50 img/s assumed, scaled by CPU cost)"
        + (f"; input pipeline {feed:.0f} img/s per process" if feed else "; input pipeline not measured")
    )
    print(
        "| backbone | image-steps | this CPU (hours) | GPU img/s | GPU work (min) | start-up (min) |\n"
        "|---|---|---|---|---|---|"
    )
    for r in rows:
        work, assumed = schedule([r], 1)["gpu_work_minutes"], " (assumed)" if r["start_up_assumed"] else ""
        source = "measured" if r["gpu_measured"] else "scaled"
        print(
            f"| {r['model']} | {r['image_steps'] / 1e6:.2f} M | {r['cpu_hours']:.1f} | {r['gpu_img_s']:.0f} "
            f"({source}) | {work:.1f} | {r['start_up_minutes']:.1f}{assumed} |"
        )
    print(
        f"| all | {sum(r['image_steps'] for r in rows) / 1e6:.2f} M | {sum(r['cpu_hours'] for r in rows):.1f} | | "
        f"{schedule(rows, 1)['gpu_work_minutes']:.1f} | {sum(r['start_up_minutes'] for r in rows):.1f} |"
    )
    plans = [schedule(rows, n) for n in args.workers]
    print("\n| dvc queue workers on one GPU | minutes | GPU busy |\n|---|---|---|")
    for p in plans:
        print(f"| {p['workers']} | {p['minutes']:.0f} | {p['gpu_busy']:.0%} |")
    missing = [m for m in BACKBONES if m not in {r["model"] for r in rows}]
    if missing:  # a partial matrix says so instead of a verdict
        print(
            f"not measured: {', '.join(missing)} (run benchmarks/run.py --only train without --quick); "
            "no verdict on the full matrix"
        )
        return
    meeting = [p for p in plans if p["minutes"] <= GOAL_MINUTES and p["gpu_busy"] >= GOAL_BUSY]
    if meeting:
        p = meeting[0]
        print(
            f"full matrix on one GPU: {p['minutes']:.0f} minutes with {p['workers']} workers, GPU busy "
            f"{p['gpu_busy']:.0%} (within the goal: {GOAL_MINUTES} minutes, {GOAL_BUSY:.0%} busy)"
        )
    else:
        print(
            f"full matrix on one GPU: no planned worker count meets {GOAL_MINUTES} minutes with the GPU "
            f"{GOAL_BUSY:.0%} busy"
        )


if __name__ == "__main__":
    main()
