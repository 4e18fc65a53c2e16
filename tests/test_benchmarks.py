"""The benchmark suite's code paths on tiny inputs (no timing is asserted: benchmarks print numbers)."""

import sys

import numpy as np
import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import combine_predictions  # noqa: E402
import gpu_check  # noqa: E402
import plan_full_study  # noqa: E402
import pooled_methods  # noqa: E402
import run as bench  # noqa: E402


def test_benchmark_code_paths_on_tiny_inputs(tmp_path, capsys):
    folder = bench.sample_folder(tmp_path / "BENCH", 1, size=160)
    crop = bench.crop_batching(str(folder), 4, 6)
    assert crop["images"] == 6 and crop["identical"] and crop["speedup"] > 0
    pipe = bench.input_pipeline(16, 32, 1)
    feed = bench.input_feed(24, 32, 8)
    assert feed["img_s"] > 0 and pipe["ratio"] > 0
    evaluations = [bench.evaluate_memory(rows, 100) for rows in (1000, 4000)]
    split = bench.split_memory(48, 32)
    train = bench.train_throughput("compactcnn", 32, 1, 4)
    assert split["images"] == 48 and train["img_s"] > 0 and train["start_up_s"] > 0
    assert all(e["seconds"] > 0 for e in evaluations)
    results = {
        "crop": crop,
        "crop_batch_speedup": crop["speedup"],
        "crop_batch_identical": crop["identical"],
        "input_pipeline": pipe,
        "input_pipeline_ratio": pipe["ratio"],
        "input_feed_images_per_second": feed,
        "evaluate_peak_mb": {str(e["rows"]): e["peak_mb"] for e in evaluations},
        "evaluate_seconds": {str(e["rows"]): e["seconds"] for e in evaluations},
        "split_peak_mb": {"sample": split["peak_mb"], "10x_sample": split["peak_mb"]},
        "split": [split, split],
        "train_images_per_second": {"compactcnn@32": train["img_s"], "resnet50@96": 10.0, "mobilenetv2@96": 20.0},
        "start_up_seconds": {"compactcnn@32": train["start_up_s"]},
    }
    bench.print_summary(results)
    table = capsys.readouterr().out
    assert "crop_batch_identical | True" in table and "evaluate at 4,000 rows" in table
    assert "input feed, 32 px batch 8" in table and "(start-up " in table


def test_full_study_plan_overlaps_start_up_with_training_and_caps_the_gpu_by_its_input():
    rates = {"resnet50@96": 10.0, "mobilenetv2@96": 20.0}
    rows = plan_full_study.plan(rates, 1900.0, {"A": 1000, "B": 300}, start_up={"resnet50@96": 8.0})
    assert [r["model"] for r in rows] == ["mobilenetv2", "resnet50"]
    assert rows[0]["image_steps"] == rows[1]["image_steps"] == 2 * 0.6 * 1300 * 30
    assert rows[0]["cpu_hours"] < rows[1]["cpu_hours"] and rows[0]["gpu_img_s"] == 2 * rows[1]["gpu_img_s"]
    # 2 heads x (2 train stages + evaluate + explain) processes; measured start-up plus GPU set-up, else assumed
    assert rows[1]["start_up_minutes"] == 8 * (8.0 + 10.0) / 60 and not rows[1]["start_up_assumed"]
    assert rows[0]["start_up_minutes"] == 8 * 25 / 60 and rows[0]["start_up_assumed"]
    one, three = plan_full_study.schedule(rows, 1), plan_full_study.schedule(rows, 3)
    assert one["minutes"] == one["gpu_work_minutes"] + one["start_up_minutes"]
    assert three["minutes"] == max(one["gpu_work_minutes"], one["minutes"] / 3) < one["minutes"]
    assert three["gpu_busy"] > one["gpu_busy"]
    fed = plan_full_study.plan(rates, 1900.0, {"A": 1000, "B": 300}, feed_img_s=1000.0)
    starved = plan_full_study.schedule(fed, 1)  # one process feeds 1,000 img/s to a GPU of 3,800 and 1,900
    assert starved["gpu_work_minutes"] == pytest.approx((rows[0]["gpu_steps"] + rows[1]["gpu_steps"]) / 1000 / 60)
    assert starved["gpu_busy"] < one["gpu_busy"]  # waiting for input is not GPU work
    fed_by_four = plan_full_study.schedule(fed, 4)  # 4 x 1,000 img/s: more than the GPU takes
    assert fed_by_four["gpu_work_minutes"] == pytest.approx(one["gpu_work_minutes"])
    # a GPU check of one backbone gives its own rate and start-up, and rescales the unchecked ones
    check = {"model": "resnet50", "images_per_second": 3800.0, "start_up_seconds": 30.0}
    checked = plan_full_study.plan(rates, 1900.0, {"A": 1000, "B": 300}, gpu_checks=[check])
    assert [r["gpu_img_s"] for r in checked] == [7600.0, 3800.0] and checked[1]["gpu_measured"]
    assert checked[1]["start_up_minutes"] == 8 * 30.0 / 60 and not checked[0]["gpu_measured"]


def test_gpu_check_dry_runs_on_the_cpu():
    result = gpu_check.check("compactcnn", 32, None, 2)
    assert result["device"] == "CPU" and not result["mixed_precision"] and result["batch"] == 8  # the registry's
    assert result["images_per_second"] > 0 and result["compute_images_per_second"] > 0
    assert 0 <= result["input_wait"] < 1 and result["start_up_seconds"] > 0
    assert result["fed_window"][0] < result["fed_window"][1]


def test_pooled_methods_table_reads_each_models_row_and_takes_worst_group_and_gap_of_the_means():
    import pandas as pd

    groups = {"YOUNG": "young", "OLDER": "older"}
    settings = pooled_methods.study_settings(groups, {"pool.method": "groupdro"})
    assert settings["age_groups"] == ["young", "older"] and settings["datasets"]["OLDER"]["age_group"] == "older"
    assert (settings["pool.models"], settings["pool.method"]) == ("all", "groupdro")
    cross_age = pd.DataFrame(
        [
            (train, test, 0.1 * i)
            for i, (train, test) in enumerate(
                (t, g) for t in ("young", "older", "POOL-all", "FER2013") for g in ("young", "older")
            )
        ],
        columns=["train_age_group", "test_age_group", "macro_f1"],
    )
    scores = pooled_methods.group_scores(cross_age, groups)
    assert scores["pooled"] == pytest.approx({"young": 0.4, "older": 0.5})
    assert scores[pooled_methods.OWN] == pytest.approx({"young": 0.0, "older": 0.3})  # young on young, older on older
    assert scores[pooled_methods.BASELINE] == pytest.approx({"young": 0.6, "older": 0.7})
    assert pooled_methods.OWN_AND_POOLED not in scores  # not evaluated: no row
    combined = pd.DataFrame({"train_age_group": "POOL-all+own", "test_age_group": ["young", "older"], "macro_f1": 0.9})
    with_combined = pooled_methods.group_scores(pd.concat([cross_age, combined]), groups)
    assert with_combined[pooled_methods.OWN_AND_POOLED] == pytest.approx({"young": 0.9, "older": 0.9})
    row = pooled_methods.summary_row("pooled", [{"young": 0.9, "older": 0.8}, {"young": 0.7, "older": 0.6}])
    assert row == "| pooled | 0.800 ± 0.100 (0.900 / 0.700) | 0.700 ± 0.100 (0.800 / 0.600) | 0.700 | 0.100 |"
    gains = pd.DataFrame(
        [
            (train, test, score, 0.01 * i, 0.01 * i - 0.05, 0.01 * i + 0.05)
            for i, (train, test, score) in enumerate(
                (t, g, s)
                for t, g in (("young", "young"), ("older", "older"), ("POOL-all", "young"))
                for s in ("accuracy", "macro_f1")
            )
        ],
        columns=["train_age_group", "test_age_group", "score", "gain", "gain_ci_low", "gain_ci_high"],
    )
    own = pooled_methods.paired_gains(gains, ["young", "older"])
    assert own == {"young": pytest.approx([0.01, -0.04, 0.06]), "older": pytest.approx([0.03, -0.02, 0.08])}  # F1
    pooled = pooled_methods.paired_gains(gains, ["POOL-all"])
    assert pooled_methods.gains_text(pooled) == "young +0.050 [+0.000, +0.100]"


def test_combined_predictions_average_the_first_runs_per_image_and_keep_each_model_to_its_own_rows():
    import pandas as pd

    probabilities = {  # (train group, seed) -> P(A) of images x1 (true A) and x2 (true B)
        ("FER2013", -1): (0.2, 0.2),  # B for both: one of two right
        ("young", 42): (0.6, 0.6),  # A for both: one right
        ("young", 1042): (0.45, 0.1),  # B for both: one right
        ("young", 2042): (0.0, 0.0),  # B for both, certain: spoils an ensemble of 3
        ("older", 42): (1.0, 1.0),  # another group's model tested on young faces: never an own-group model
    }
    rows = [
        (train, train == "FER2013", seed, "young", "YOUNG", source, true, p, 1 - p, False)
        for (train, seed), pair in probabilities.items()
        for source, true, p in zip(("x1", "x2"), (0, 1), pair, strict=True)
    ]
    rows += [("POOL-all", *row[1:]) for row in rows if row[0] == "young"]  # the pooled runs predict alike
    columns = ["train_age_group", "baseline", "seed", "test_age_group", "test_dataset", "source", "true"]
    frame = pd.DataFrame(rows, columns=[*columns, "p_A", "p_B", "seen_in_training"])
    scores = combine_predictions.split_scores(frame, ["A", "B"], sizes=[2, 3])
    one_of_two = pytest.approx(1 / 3)  # macro-F1 with one class never predicted
    assert scores["off the shelf"] == {"young": one_of_two}
    assert scores["own age group, one run (mean of 3)"] == {"young": one_of_two}
    assert scores["own age group, ensemble of 2"] == {"young": 1.0}  # (0.525, 0.35): both right
    assert scores["own age group, ensemble of 3"] == {"young": one_of_two}
    assert scores["pooled, ensemble of 2"] == scores["own and pooled, ensemble of 2"] == {"young": 1.0}
    assert scores["own age group, ensemble of 2, with the off-the-shelf model"] == {"young": one_of_two}


def test_real_photos_trains_several_seeds_per_split_and_summarises_over_all_models(tmp_path):
    import real_photos
    import yaml

    from fer_age.modeling.selection import soup_seeds

    real_photos.write_params(tmp_path, ["Happy", "Neutral"], 43, {"train.soup": 2}, training_seeds=3)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert (params["seed"], params["seeds"], params["train"]["soup"]) == (43, [43, 1043, 2043], 2)
    assert params["seeds"] == soup_seeds(43, 3)  # the runs a soup of 3 averages
    runs = [
        {"seed": seed, "accuracy": f1, "macro_f1": f1}
        for seed, f1 in ((42, 0.8), (42, 0.6), (43, 0.9), (43, 0.9), (44, 0.5), (44, 0.7))
    ]
    summary = real_photos.summarise(runs)
    assert summary["macro_f1"] == pytest.approx((0.733333, np.std([0.8, 0.6, 0.9, 0.9, 0.5, 0.7])), abs=1e-6)
    assert summary["split_means"] == pytest.approx([0.7, 0.9, 0.6])  # each split seed's mean, in seed order


def test_real_photos_counts_the_baselines_answers_a_model_fixes_and_breaks():
    """Image by image against the baseline: two of its three errors fixed, one right answer broken; log loss from
    the probabilities, lower for the model that is surer of the right classes."""
    import real_photos

    y = np.array([0, 0, 1, 1, 1])
    baseline = np.array([[0.9, 0.1], [0.4, 0.6], [0.7, 0.3], [0.6, 0.4], [0.2, 0.8]])  # images 1, 2, 3 wrong
    trained = np.array([[0.6, 0.4], [0.8, 0.2], [0.3, 0.7], [0.55, 0.45], [0.6, 0.4]])  # 1, 2 fixed; 4 broken
    assert real_photos.changed_answers(y, trained, baseline) == {"fixed": 2, "broken": 1, "baseline_errors": 3}
    ours, theirs = real_photos.scores(y, trained), real_photos.scores(y, baseline)
    assert (ours["accuracy"], theirs["accuracy"]) == (0.6, 0.4)
    assert ours["log_loss"] == pytest.approx(-np.mean(np.log([0.6, 0.8, 0.7, 0.45, 0.4])))


def test_real_photos_extra_training_images_are_usable_labelled_crops_of_other_subjects():
    """--extra adds only faces the study can use (cropped or kept whole, of a study label) of people who are not in
    the tested dataset, so no test subject is ever trained on."""
    import pandas as pd
    import real_photos

    report = pd.DataFrame(
        {
            "subject": ["Ann", "Bob", "Bob", "Cy", "Dee", "Eve"],
            "status": ["cropped", "cropped", "no_face_kept_full", "cropped", "excluded_emotion", "unreadable"],
            "label": pd.array([0, 1, 0, 1, None, 0], dtype="Int64"),
        }
    )
    rows = real_photos.extra_training_rows(report, {"Ann", "Zed"})
    assert rows["subject"].tolist() == ["Bob", "Bob", "Cy"]
    assert rows["label"].tolist() == [1, 0, 1]
