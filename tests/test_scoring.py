"""Scoring and reporting on hand-made predictions, with hand-checked values."""

import numpy as np
import pandas as pd
import pytest
from conftest import LABELS
from sklearn.metrics import accuracy_score, f1_score

from fer_age.contracts import TrainingInfo
from fer_age.modeling.inference import Predictor, SplitImages, prediction_frame
from fer_age.modeling.selection import degenerate_reason
from fer_age.results.bootstrap import cell_scores, scores_from_confusions
from fer_age.results.gaps import gap_table, recall_table
from fer_age.results.reporting import metrics_dict, report_markdown
from fer_age.results.scoring import classification_rows, cross_scores, ordered

AGE_GROUPS = ["child", "adult", "older"]


def _predictor(name, group, degenerate="", baseline=False, seed=42):
    info = TrainingInfo(name, [name], group, "compactcnn", "m2", "", "rescale", 32, LABELS, 1, 1, degenerate, seed=seed)
    return Predictor(info, None, baseline)


def bootstrap_scores(y_true, y_pred, images, n_classes, samples, level, seed, seeds=None):
    """cell_scores on bare arrays: one prediction per row, its image id and training seed."""
    frame = pd.DataFrame(
        {
            "true": y_true,
            "predicted": y_pred,
            "test_dataset": "T",
            "source": np.asarray(images).astype(str),
            "seed": 42 if seeds is None else seeds,
        }
    )
    return cell_scores(frame, n_classes, samples, level, seed)


def _split(test, group, true):
    return SplitImages(
        test,
        np.zeros((len(true), 4, 4, 3), np.uint8),
        np.array(true),
        [f"{i}.png" for i in range(len(true))],
        np.array(group if isinstance(group, list) else [group] * len(true)),
        np.array([f"{test}-{i}" for i in range(len(true))]),
    )


def _frame(predictor, test, group, true, predicted):
    return prediction_frame(predictor, _split(test, group, true), LABELS, np.eye(4)[predicted])


def test_test_images_a_model_saw_in_training_through_another_dataset_are_marked():
    split = _split("SAMPLE-OLDER", "older", [0, 1, 2])
    frame = prediction_frame(
        _predictor("SAMPLE-CHILD", "child"), split, LABELS, np.eye(4)[[0, 1, 2]], seen={"SAMPLE-OLDER-1", "elsewhere"}
    )
    assert frame["seen_in_training"].tolist() == [False, True, False]


@pytest.fixture
def predictions():
    child, older = _predictor("SAMPLE-CHILD", "child"), _predictor("SAMPLE-OLDER", "older", "predicts only 'Angry'")
    true = [0, 0, 1, 1, 2, 2, 3, 3]
    return pd.concat(
        [
            _frame(child, "SAMPLE-CHILD", "child", true, [0, 0, 1, 1, 2, 2, 3, 3]),  # 8/8
            _frame(child, "SAMPLE-OLDER", "older", true, [0, 1, 1, 0, 2, 2, 3, 0]),  # 5/8
            _frame(older, "SAMPLE-CHILD", "child", true, [0] * 8),  # 2/8
            _frame(older, "SAMPLE-OLDER", "older", true, [0] * 8),  # 2/8
        ],
        ignore_index=True,
    )


def _cross_age(predictions):
    table = cross_scores(predictions, ["train_age_group", "test_age_group"], 4, 300, 0.95, 0)
    return ordered(ordered(table, ["test_age_group"], AGE_GROUPS), ["train_age_group"], AGE_GROUPS)


def test_complet_result_rows(predictions):
    rows = classification_rows(predictions, LABELS)
    pair = rows[rows["key"] == "CompactCNN_m2_SAMPLE-CHILD_TestOnSAMPLE-OLDER"].set_index("class")
    assert list(pair.index) == ["Angry", "Fear", "Happy", "Sad", "accuracy", "macro avg", "weighted avg"]
    # Angry: true {0,1}, predicted 0 at rows 0, 3, 7 -> precision 1/3, recall 1/2
    assert pair.loc["Angry", "precision"] == pytest.approx(1 / 3)
    assert pair.loc["Angry", "recall"] == pytest.approx(0.5)
    assert pair.loc["Angry", "f1_score"] == pytest.approx(0.4)
    assert pair.loc["Happy", "f1_score"] == pytest.approx(1.0)
    assert pair.loc["accuracy", "f1_score"] == pytest.approx(5 / 8)
    assert pair.loc["accuracy", "support"] == 8 and pair.loc["Sad", "support"] == 2
    assert pair["train_age_group"].iat[0] == "child" and pair["test_age_group"].iat[0] == "older"
    assert not pair["degenerate"].any() and not pair["baseline"].any()
    flagged = rows[rows["train_dataset"] == "SAMPLE-OLDER"]
    assert flagged["degenerate"].all() and (flagged["degenerate_reason"] == "predicts only 'Angry'").all()
    assert len(rows) == 4 * 7


def test_cross_age_table(predictions):
    table = _cross_age(predictions)
    assert list(zip(table["train_age_group"], table["test_age_group"])) == [
        ("child", "child"),
        ("child", "older"),
        ("older", "child"),
        ("older", "older"),
    ]  # params order
    cells = table.set_index(["train_age_group", "test_age_group"])
    assert cells.loc[("child", "older"), "accuracy"] == pytest.approx(5 / 8)
    assert cells.loc[("older", "child"), "degenerate_models"] == "SAMPLE-OLDER"
    # one class predicted: F1 of Angry = 2*2/(2*2+6+0) = 0.4, others 0 -> macro 0.1
    assert cells.loc[("older", "older"), "macro_f1"] == pytest.approx(0.1)
    low, high = cells.loc[("child", "older"), ["accuracy_ci_low", "accuracy_ci_high"]]
    assert low < 5 / 8 < high
    assert cells.loc[("child", "child"), "accuracy_ci_low"] == 1.0  # perfect predictions: no spread
    assert (cells["n_seeds"] == 1).all() and cells["accuracy_sd"].isna().all()


def test_gaps_own_against_other_and_metrics(predictions):
    gaps = gap_table(predictions, AGE_GROUPS, 4, 400, 0.95, 0)
    accuracy = gaps[gaps["score"] == "accuracy"].set_index("train_age_group")
    assert set(accuracy["kind"]) == {"own_vs_other"} and len(gaps) == 4  # 2 groups x 2 scores
    child = accuracy.loc["child"]
    assert (child.first_value, child.second_value, child.gap) == pytest.approx((1.0, 5 / 8, 3 / 8))
    assert child.gap_ci_low <= 3 / 8 <= child.gap_ci_high
    assert child.simultaneous_level == pytest.approx(1 - 0.05 / 2)  # Bonferroni over the 2 comparisons
    assert accuracy.loc["older", "gap"] == 0 and accuracy.loc["older", "verdict"] == "no clear difference"
    metrics = metrics_dict(gaps, _cross_age(predictions), 1)
    assert metrics["gap"]["child"]["own"] == 1.0 and metrics["gap"]["child"]["gap"] == 0.375
    assert metrics["n_seeds"] == 1 and "baseline" not in metrics
    report = report_markdown(_cross_age(predictions), gaps, ["x"], [], 0.95)
    assert report.splitlines()[2].startswith("**Answer.** In accuracy, trained on **child** faces")
    assert "+37.5 points" in report and "| child | older |" in report


def test_baseline_gets_a_gap_between_each_pair_of_test_groups(predictions):
    baseline = _predictor("FER2013", "FER2013", baseline=True, seed=-1)
    true = [0, 1, 2, 3] * 2
    frames = [
        _frame(baseline, "SAMPLE-CHILD", "child", true, true),  # 8/8
        _frame(baseline, "SAMPLE-OLDER", "older", true, [0, 0, 0, 0, 0, 1, 2, 3]),  # 5/8
    ]
    both = pd.concat([predictions, *frames], ignore_index=True)
    gaps = gap_table(both, AGE_GROUPS, 4, 300, 0.95, 0)
    row = gaps[(gaps["kind"] == "baseline") & (gaps["score"] == "accuracy")].iloc[0]
    assert (row.first, row.second, row.gap) == ("child", "older", pytest.approx(3 / 8))
    assert row.comparisons == 3  # two own-vs-other gaps and the baseline's one
    metrics = metrics_dict(gaps, _cross_age(both), 1)
    assert metrics["baseline"]["FER2013"] == {"child": 1.0, "older": 0.625, "worst": 0.625, "gap": 0.375}
    assert "off-the-shelf FER2013 model" in report_markdown(_cross_age(both), gaps, ["x"], [], 0.95)


def test_recall_per_emotion_and_age_group(predictions):
    table = recall_table(predictions, LABELS).set_index(["train_age_group", "test_age_group", "emotion"])
    # child model on older images: true [0,0,1,1,2,2,3,3], predicted [0,1,1,0,2,2,3,0]
    assert table.loc[("child", "older", "Angry"), "recall"] == 0.5
    assert table.loc[("child", "older", "Happy"), "recall"] == 1.0
    assert table.loc[("older", "child", "Fear"), "recall"] == 0.0 and table["support"].eq(2).all()


def _seeded(seeds_correct: dict[int, list[bool]], group: str = "child") -> pd.DataFrame:
    """Predictions of several seeds of one child model on the same images."""
    frames = []
    for seed, correct in seeds_correct.items():
        true = np.arange(len(correct)) % 4
        predicted = np.where(correct, true, (true + 1) % 4)
        frames.append(_frame(_predictor("SAMPLE-CHILD", "child", seed=seed), "T", group, true, predicted))
    return pd.concat(frames, ignore_index=True)


def test_seeds_average_and_widen_the_interval():
    rng = np.random.default_rng(0)
    base = rng.random(80)
    far_apart = {42: base < 0.5, 43: base < 0.9}  # the seeds disagree: 0.5 against 0.9
    alike = {42: base < 0.7, 43: base < 0.7}
    cell = cell_scores(_seeded(far_apart), 4, 1000, 0.95, 0)
    assert cell["n_seeds"] == 2 and cell["n_images"] == 80
    assert cell["accuracy"] == pytest.approx(np.mean([np.mean(c) for c in far_apart.values()]))
    assert cell["accuracy_sd"] == pytest.approx(np.std([np.mean(c) for c in far_apart.values()], ddof=1))
    same = cell_scores(_seeded(alike), 4, 1000, 0.95, 0)
    assert same["accuracy_sd"] == 0
    width = cell["accuracy_ci_high"] - cell["accuracy_ci_low"]
    assert width > 1.5 * (same["accuracy_ci_high"] - same["accuracy_ci_low"])  # the seeds' spread is in it


def _simulated_study(rng, n_images: int, n_seeds: int, levels=(1.2, 0.4)) -> pd.DataFrame:
    """One study draw: on each age group's images, seed s's child model is right with probability
    sigmoid(level + image effect + seed effect + seed-by-group effect), so both images and seeds move the gap."""
    shared = rng.normal(0, 0.3, n_seeds)
    frames = []
    for group, level in zip(("child", "adult"), levels):
        images, by_group = rng.normal(0, 1.5, n_images), rng.normal(0, 0.4, n_seeds)
        for s in range(n_seeds):
            correct = rng.random(n_images) < 1 / (1 + np.exp(-(level + images + shared[s] + by_group[s])))
            true = np.arange(n_images) % 4
            predicted = np.where(correct, true, (true + 1) % 4)
            frames.append(_frame(_predictor("SAMPLE-CHILD", "child", seed=s), f"T-{group}", group, true, predicted))
    return pd.concat(frames, ignore_index=True)


def test_gap_interval_covers_the_true_gap_and_needs_the_seed_level():
    """150 simulated studies (80 images per group, 3 seeds, 400 resamples). Measured: the two-level interval
    covers the true gap 0.91 of the time (200 studies, 1000 resamples), the image-only one 0.82; where seeds
    barely matter, 0.98 (image effects dominate) to 0.995 (seeds disagree image by image: resampling both
    counts that noise twice, as Owen's pigeonhole bootstrap does)."""
    rng = np.random.default_rng(7)
    effects = rng.normal(0, 1.5, 2_000_000) + rng.normal(0, 0.3, 2_000_000)
    truth = np.mean(1 / (1 + np.exp(-(1.2 + effects + rng.normal(0, 0.4, 2_000_000))))) - np.mean(
        1 / (1 + np.exp(-(0.4 + effects + rng.normal(0, 0.4, 2_000_000))))
    )
    covered = {"two-level": [], "images only": []}
    for i in range(150):
        study = _simulated_study(rng, 80, 3)
        for name, frame in (("two-level", study), ("images only", study.assign(seed=0))):
            row = gap_table(frame, ["child", "adult"], 4, 400, 0.95, i).iloc[0]  # accuracy
            covered[name].append(row.gap_ci_low <= truth <= row.gap_ci_high)
    coverage = {name: np.mean(hits) for name, hits in covered.items()}
    assert 0.87 <= coverage["two-level"] <= 0.99, coverage
    assert coverage["images only"] < coverage["two-level"] - 0.04, coverage  # seeds are part of the noise


def test_each_resample_scores_as_sklearn_does():
    rng = np.random.default_rng(3)
    y_true, y_pred = rng.integers(0, 4, 40), rng.integers(0, 4, 40)
    for _ in range(20):
        idx = rng.integers(0, 40, 40)
        cm = np.zeros(16)
        np.add.at(cm, y_true[idx] * 4 + y_pred[idx], 1)
        accuracy, macro_f1 = scores_from_confusions(cm[None], 4)
        assert accuracy[0] == pytest.approx(accuracy_score(y_true[idx], y_pred[idx]))
        assert macro_f1[0] == pytest.approx(
            f1_score(y_true[idx], y_pred[idx], labels=range(4), average="macro", zero_division=0)
        )


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(3)
    y_true, y_pred = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    images = np.arange(50)
    a = bootstrap_scores(y_true, y_pred, images, 4, 500, 0.95, seed=1)
    assert a == pytest.approx(bootstrap_scores(y_true, y_pred, images, 4, 500, 0.95, seed=1), nan_ok=True)
    assert a != pytest.approx(bootstrap_scores(y_true, y_pred, images, 4, 500, 0.95, seed=2), nan_ok=True)
    assert a["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert a["accuracy_ci_low"] < a["accuracy"] < a["accuracy_ci_high"]
    assert a["macro_f1_ci_low"] < a["macro_f1"] < a["macro_f1_ci_high"]


def test_pooled_cell_resamples_images_not_rows():
    """Ten models that agree on each of 60 images: the evidence is 60 images, not 600 rows."""
    rng = np.random.default_rng(0)
    true = rng.integers(0, 4, 60)
    correct = rng.random(60) < 0.6
    predicted = np.where(correct, true, (true + 1) % 4)
    models = 10
    y_true, y_pred, images = np.tile(true, models), np.tile(predicted, models), np.tile(np.arange(60), models)
    by_image = bootstrap_scores(y_true, y_pred, images, 4, 1000, 0.95, 0)
    by_row = bootstrap_scores(y_true, y_pred, np.arange(len(y_true)), 4, 1000, 0.95, 0)  # the old method
    one_model = bootstrap_scores(true, predicted, np.arange(60), 4, 1000, 0.95, 0)
    width = {
        k: r["accuracy_ci_high"] - r["accuracy_ci_low"]
        for k, r in (("image", by_image), ("row", by_row), ("one", one_model))
    }
    assert width["row"] < 0.5 * width["image"]  # rows: about sqrt(10) times too narrow
    assert width["image"] == pytest.approx(width["one"], abs=0.03)  # as wide as the 60 images allow
    assert by_image["n"] == 600 and by_image["n_images"] == 60


def test_per_image_age_groups_fill_several_cells():
    faces = _predictor("FACES", "adult+older")
    groups = ["adult"] * 4 + ["older"] * 4
    frame = _frame(faces, "FACES", groups, [0, 1, 2, 3] * 2, [0, 1, 2, 3, 0, 0, 0, 0])
    table = cross_scores(frame, ["train_age_group", "test_age_group"], 4, 200, 0.95, 0).set_index("test_age_group")
    assert table.loc["adult", "accuracy"] == 1.0 and table.loc["older", "accuracy"] == 0.25
    assert classification_rows(frame, LABELS)["test_age_group"].iat[0] == "adult+older"


def test_degenerate_guard():
    y = np.array([0, 1, 2, 3] * 5)
    assert "only 'Fear'" in degenerate_reason(y, np.ones_like(y), LABELS)
    assert "chance" in degenerate_reason(y, np.roll(y, 1), LABELS)
    assert degenerate_reason(y, y, LABELS) == ""


def test_a_leave_one_out_model_reports_the_age_group_it_never_saw(predictions):
    pooled = _predictor("POOL-no-older", "POOL-no-older")
    true = [0, 1, 2, 3] * 2
    frames = [
        _frame(pooled, "SAMPLE-CHILD", "child", true, true),  # 8/8 on a group it trained on
        _frame(pooled, "SAMPLE-OLDER", "older", true, [0, 1, 2, 3, 0, 0, 0, 0]),  # 5/8 on the one it never saw
    ]
    both = pd.concat([predictions, *frames], ignore_index=True)
    gaps = gap_table(both, AGE_GROUPS, 4, 200, 0.95, 0)
    assert set(gaps.loc[gaps["train_age_group"] == "POOL-no-older", "kind"]) == {"mixed_age"}
    entry = metrics_dict(gaps, _cross_age(both), 1)["mixed_age"]["POOL-no-older"]
    assert entry == {"child": 1.0, "older": 0.625, "worst": 0.625, "gap": 0.375, "unseen": 0.625}


def test_no_gap_to_report_gives_an_empty_table_with_its_columns(predictions):
    own_only = predictions[predictions["train_age_group"] == predictions["test_age_group"]]
    gaps = gap_table(own_only, AGE_GROUPS, 4, 100, 0.95, 0)
    assert gaps.empty and "kind" in gaps.columns
    assert metrics_dict(gaps, _cross_age(own_only), 1) == {"n_seeds": 1, "gap": {}}
    assert "No age group's models were tested" in report_markdown(_cross_age(own_only), gaps, ["x"], [], 0.95)


def test_gains_over_the_baseline_are_paired_on_the_same_test_images_and_reported():
    """A trained model against the off-the-shelf model on the same images: where they predict alike the gain and
    its whole interval are 0 (paired draws; unpaired, 12 of 20 right would spread over +-0.3); where the trained
    models (two seeds) fix 6 of the baseline's 8 errors the gain is +0.3 and clearly above 0. Images one side did
    not predict (seen in training) are left out of both; mixed-age models are compared on every age group."""
    from fer_age.results.gains import baseline_gain_table

    baseline = _predictor("FER2013", "FER2013", baseline=True, seed=-1)
    child = [_predictor("SAMPLE-CHILD", "child", seed=s) for s in (42, 43)]
    adult, pooled = _predictor("SAMPLE-ADULT", "adult"), _predictor("POOL-all", "POOL-all")
    true = [0, 1, 2, 3] * 5
    right = np.array([True] * 12 + [False] * 8)
    base_pred = np.where(right, true, (np.array(true) + 1) % 4)
    fixed = np.where(np.arange(20) < 18, true, base_pred)  # the baseline's errors 12..17 fixed
    frames = [
        _frame(baseline, "SAMPLE-CHILD", "child", true, base_pred),
        _frame(baseline, "SAMPLE-ADULT", "adult", true, base_pred),
        *(_frame(m, "SAMPLE-CHILD", "child", true, fixed) for m in child),
        _frame(adult, "SAMPLE-ADULT", "adult", true, base_pred).iloc[2:],  # images 0 and 1 seen in training
        _frame(pooled, "SAMPLE-CHILD", "child", true, fixed),
        _frame(pooled, "SAMPLE-ADULT", "adult", true, base_pred),
    ]
    predictions = pd.concat(frames, ignore_index=True)
    gains = baseline_gain_table(predictions, AGE_GROUPS, 4, 500, 0.95, 0)
    accuracy = gains[gains["score"] == "accuracy"].set_index(["train_age_group", "test_age_group"])
    assert list(accuracy.index) == [
        ("child", "child"),
        ("adult", "adult"),
        ("POOL-all", "child"),
        ("POOL-all", "adult"),
    ]
    assert (accuracy["comparisons"] == 4).all() and (accuracy["baseline"] == "FER2013").all()
    assert (
        accuracy.loc[("child", "child"), "kind"] == "own_group"
        and accuracy.loc[("POOL-all", "adult"), "kind"] == "mixed_age"
    )

    same = accuracy.loc[("adult", "adult")]
    assert same.n_images == 18 and same.baseline_value == pytest.approx(10 / 18)  # on the 18 images both predicted
    assert same.gain == same.gain_ci_low == same.gain_ci_high == 0 and same.verdict == "no clear difference"
    better = accuracy.loc[("child", "child")]
    assert (better.trained_value, better.baseline_value, better.gain) == pytest.approx((0.9, 0.6, 0.3))
    assert 0 < better.gain_ci_low < 0.3 < better.gain_ci_high and better.verdict == "trained higher"
    assert better.n_seeds == 2 and better.gain_sd == 0  # both seeds predict alike
    assert (better.images_fixed, better.images_broken, same.images_fixed, same.images_broken) == (6, 0, 0, 0)

    metrics = metrics_dict(gap_table(predictions, AGE_GROUPS, 4, 100, 0.95, 0), _cross_age(predictions), 2, gains)
    assert metrics["baseline_gain"]["child"]["child"]["gain"] == 0.3
    assert metrics["baseline_gain"]["POOL-all"]["adult"] == {"gain": 0.0, "low": 0.0, "high": 0.0}
    report = report_markdown(
        _cross_age(predictions), gap_table(predictions, AGE_GROUPS, 4, 100, 0.95, 0), [], [], 0.95, gains
    )
    assert "## Against the off-the-shelf model" in report
    assert "- child models on child test images (20), accuracy: 0.900 vs 0.600, gain +30.0 points [" in report
    assert (
        "SD over seeds 0.0: trained higher (6 of the baseline's errors fixed, 0 of its right answers broken" in report
    )


def test_gains_count_the_baselines_answers_each_trained_model_fixes_and_breaks():
    """Per trained model (dataset and seed), images the baseline got wrong and it got right, and the reverse,
    averaged: SAMPLE-CHILD's seed 42 fixes 3 and breaks 1, its seed 43 fixes 1 and breaks 3, KIDS' two models
    answer as the baseline, so both average 1 over the four models, and the accuracy gain is (1 - 1) / 12."""
    from fer_age.results.gains import baseline_gain_table

    baseline = _predictor("FER2013", "FER2013", baseline=True, seed=-1)
    true = np.array([0, 1, 2, 3] * 3)
    base_pred = np.where(np.arange(12) < 8, true, (true + 1) % 4)  # images 8..11 wrong
    first, second = base_pred.copy(), base_pred.copy()
    first[[8, 9, 10]], first[0] = true[[8, 9, 10]], 1  # fixes 8, 9, 10; breaks 0
    second[8], second[[0, 1, 2]] = true[8], (true[[0, 1, 2]] + 1) % 4  # fixes 8; breaks 0, 1, 2
    frames = [
        _frame(baseline, "SAMPLE-CHILD", "child", true, base_pred),
        _frame(_predictor("SAMPLE-CHILD", "child", seed=42), "SAMPLE-CHILD", "child", true, first),
        _frame(_predictor("SAMPLE-CHILD", "child", seed=43), "SAMPLE-CHILD", "child", true, second),
        *(_frame(_predictor("KIDS", "child", seed=s), "SAMPLE-CHILD", "child", true, base_pred) for s in (42, 43)),
    ]
    gains = baseline_gain_table(pd.concat(frames, ignore_index=True), AGE_GROUPS, 4, 100, 0.95, 0)
    accuracy = gains[gains["score"] == "accuracy"].iloc[0]
    assert (accuracy.images_fixed, accuracy.images_broken, accuracy.n_seeds, accuracy.n_images) == (1, 1, 2, 12)
    assert accuracy.gain == pytest.approx(0) and accuracy.gain_sd == pytest.approx(np.std([2 / 24, -2 / 24], ddof=1))


def test_without_a_baseline_there_is_no_gain_to_report(predictions):
    from fer_age.results.gains import GAIN_COLUMNS, baseline_gain_table

    gains = baseline_gain_table(predictions, AGE_GROUPS, 4, 100, 0.95, 0)
    assert gains.empty and list(gains.columns) == GAIN_COLUMNS
    report = report_markdown(
        _cross_age(predictions), gap_table(predictions, AGE_GROUPS, 4, 100, 0.95, 0), [], [], 0.95, gains
    )
    assert "off-the-shelf" not in report and "baseline_gain" not in metrics_dict(
        gap_table(predictions, AGE_GROUPS, 4, 100, 0.95, 0), _cross_age(predictions), 1, gains
    )


def test_own_and_pooled_rows_average_the_pooled_and_the_own_model_per_image():
    """POOL-all+own: per test image, the mean of the pooled model's and of its own dataset's model's class
    probabilities (a class neither predicted can win), same seed only; another dataset's model and the baseline
    never enter; seen-in-training and degenerate flags carry over; scored as a mixed-age model."""
    from fer_age.contracts import OWN_AND_POOLED
    from fer_age.results.combined import own_and_pooled_rows

    def frame(predictor, test, group, probabilities, seen=()):
        return prediction_frame(predictor, _split(test, group, [1, 2]), LABELS, np.array(probabilities), seen)

    pooled = [_predictor("POOL-all", "POOL-all", seed=s) for s in (42, 43)]
    child, adult = _predictor("SAMPLE-CHILD", "child"), _predictor("SAMPLE-ADULT", "adult", degenerate="one class")
    baseline = _predictor("FER2013", "FER2013", baseline=True, seed=-1)
    pooled_probs = [[0.55, 0.45, 0, 0], [0, 0, 1, 0]]  # Angry, Happy
    own_probs = [[0.1, 0.4, 0.5, 0], [0, 0, 1, 0]]  # Happy, Happy: the mean says Fear, Happy
    frames = [
        *(
            frame(m, test, g, pooled_probs)
            for m in pooled
            for test, g in (("SAMPLE-CHILD", "child"), ("SAMPLE-ADULT", "adult"))
        ),
        frame(child, "SAMPLE-CHILD", "child", own_probs),
        frame(child, "SAMPLE-ADULT", "adult", [[1, 0, 0, 0]] * 2),  # another group's model: not an own model
        frame(adult, "SAMPLE-ADULT", "adult", own_probs, seen={"SAMPLE-ADULT-1"}),
        frame(baseline, "SAMPLE-CHILD", "child", [[0, 0, 0, 1]] * 2),
    ]
    predictions = pd.concat(frames, ignore_index=True)
    rows = own_and_pooled_rows(predictions, LABELS)
    assert list(rows.columns) == list(predictions.columns)
    assert len(rows) == 4 and set(rows["seed"]) == {42}  # seed 43 has no own models
    assert set(rows["train_dataset"]) == set(rows["train_age_group"]) == {OWN_AND_POOLED}
    by_test = {test: part for test, part in rows.groupby("test_dataset")}
    child_rows = by_test["SAMPLE-CHILD"]
    assert child_rows["predicted"].tolist() == [1, 2] and child_rows["predicted_label"].tolist() == ["Fear", "Happy"]
    assert child_rows[[f"p_{label}" for label in LABELS]].to_numpy()[0] == pytest.approx([0.325, 0.425, 0.25, 0])
    assert not child_rows["degenerate"].any() and not child_rows["seen_in_training"].any()
    adult_rows = by_test["SAMPLE-ADULT"]
    assert adult_rows["seen_in_training"].tolist() == [False, True]
    assert adult_rows["degenerate"].all() and set(adult_rows["degenerate_reason"]) == {"one class"}
    assert own_and_pooled_rows(predictions[~predictions["train_dataset"].eq("POOL-all")], LABELS).empty

    scored = pd.concat([predictions, rows], ignore_index=True)
    scored = scored[~scored["seen_in_training"]]
    metrics = metrics_dict(gap_table(scored, AGE_GROUPS, 4, 100, 0.95, 0), _cross_age(scored), 2)
    assert metrics["mixed_age"][OWN_AND_POOLED]["child"] == 1.0  # Fear and Happy, both right
