"""The benchmark suite's code paths on tiny inputs (no timing is asserted: benchmarks print numbers)."""

import sys

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import plan_full_study  # noqa: E402
import run as bench  # noqa: E402


def test_benchmark_code_paths_on_tiny_inputs(tmp_path, capsys):
    folder = bench.sample_folder(tmp_path / "BENCH", 1, size=160)
    crop = bench.crop_batching(str(folder), 4, 6)
    assert crop["images"] == 6 and crop["identical"] and crop["speedup"] > 0
    pipe = bench.input_pipeline(16, 32, 1)
    evaluations = [bench.evaluate_memory(rows, 100) for rows in (1000, 4000)]
    split = bench.split_memory(48, 32)
    train = bench.train_throughput("compactcnn", 32, 1, 4)
    assert split["images"] == 48 and train["img_s"] > 0 and all(e["seconds"] > 0 for e in evaluations)
    results = {"crop": crop, "crop_batch_speedup": crop["speedup"], "crop_batch_identical": crop["identical"],
               "input_pipeline": pipe, "input_pipeline_ratio": pipe["ratio"],
               "evaluate_peak_mb": {str(e["rows"]): e["peak_mb"] for e in evaluations},
               "evaluate_seconds": {str(e["rows"]): e["seconds"] for e in evaluations},
               "split_peak_mb": {"sample": split["peak_mb"], "10x_sample": split["peak_mb"]}, "split": [split, split],
               "train_images_per_second": {"compactcnn@32": train["img_s"], "resnet50@96": 10.0,
                                           "mobilenetv2@96": 20.0}}
    bench.print_summary(results)
    table = capsys.readouterr().out
    assert "crop_batch_identical | True" in table and "evaluate at 4,000 rows" in table
    rows = plan_full_study.plan(results["train_images_per_second"], 1900.0, {"A": 1000, "B": 300})
    assert [r["model"] for r in rows] == ["mobilenetv2", "resnet50"]
    assert rows[0]["cpu_hours"] < rows[1]["cpu_hours"] and rows[0]["gpu_minutes"] < rows[1]["gpu_minutes"]
    assert rows[0]["image_steps"] == rows[1]["image_steps"] == 2 * 0.6 * 1300 * 30
