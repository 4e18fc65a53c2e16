"""Crop batching: batched MTCNN against the per-image loop on the same images; same results?

Usage: python benchmarks/crop_batching.py FOLDER [--batch-size 16] [--limit N]
FOLDER is a raw dataset in the folders layout (e.g. a copy of ../shared/data/real-photos/MUXDEV).
Runs the crop stage's work twice, batch size N and 1, and prints the detection throughput of each,
the speed-up, and whether the reports and the crop files are identical.
"""

from __future__ import annotations

import argparse
import filecmp
import tempfile
import time
from pathlib import Path

from fer_age.config import CropConfig, DatasetConfig
from fer_age.crop import crop_dataset
from fer_age.datasets import discover
from fer_age.emotions import KNOWN_EMOTIONS
from fer_age.faces import MtcnnDetector, make_detector


def detection_rate(items, batch_size: int) -> float:
    """Images per second of MTCNN alone (images decoded beforehand) at ``batch_size``."""
    from fer_age.faces import load_image

    images = [load_image(item.path) for item in items]
    detector = MtcnnDetector(min_confidence=0.8, batch_size=batch_size)
    detector.detect(images[:2])  # warm-up: graph tracing
    started = time.perf_counter()
    for start in range(0, len(images), batch_size * 8):  # the crop stage's load chunks
        detector.detect(images[start:start + batch_size * 8])
    return len(images) / (time.perf_counter() - started)


def crop_with(items, batch_size: int, out: Path):
    cfg = CropConfig(batch_size=batch_size)
    detectors = [make_detector(d, cfg) for d in cfg.detectors]
    return crop_dataset(items, out, "BENCH", cfg, detectors)


def compare(folder: Path, batch_size: int, limit: int) -> dict:
    labels = sorted(KNOWN_EMOTIONS)
    items = discover(folder, folder.name, DatasetConfig(raw=folder.name, age_group="adult"), labels)
    items = [i for i in items if not i.status][:limit or None]
    batched, single = detection_rate(items, batch_size), detection_rate(items, 1)
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp, "batched"), Path(tmp, "single")
        report_a, report_b = crop_with(items, batch_size, a), crop_with(items, 1, b)
        crops = sorted(str(p.relative_to(a)) for p in a.rglob("*.png"))
        same_files = crops == sorted(str(p.relative_to(b)) for p in b.rglob("*.png")) and not filecmp.cmpfiles(
            a, b, crops, shallow=False)[1]
        differing = int((report_a.fillna(-1) != report_b.fillna(-1)).any(axis=1).sum())
    return {"images": len(items), "batch_size": batch_size, "batched_img_s": batched, "single_img_s": single,
            "speedup": batched / single, "identical": bool(differing == 0 and same_files),
            "differing_rows": differing, "statuses": report_a["status"].value_counts().to_dict()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    r = compare(args.folder, args.batch_size, args.limit)
    print(f"images: {r['images']}; statuses: {r['statuses']}")
    print(f"MTCNN batched (batch {r['batch_size']}): {r['batched_img_s']:.1f} img/s; per image: "
          f"{r['single_img_s']:.1f} img/s; speed-up {r['speedup']:.2f}x")
    print(f"identical reports and crops: {r['identical']} ({r['differing_rows']} report rows differ)")


if __name__ == "__main__":
    main()
