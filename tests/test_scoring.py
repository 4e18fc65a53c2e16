"""Scoring and reporting on hand-made predictions, with hand-checked values."""

import numpy as np
import pandas as pd
import pytest
from conftest import LABELS
from sklearn.metrics import accuracy_score, f1_score

from fer_age.contracts import TrainingInfo
from fer_age.modeling.inference import Predictor, SplitImages, prediction_frame
from fer_age.modeling.selection import degenerate_reason
from fer_age.results.reporting import metrics_dict, report_markdown
from fer_age.results.scoring import (
    bootstrap_scores,
    classification_rows,
    cross_scores,
    headline,
    ordered,
    scores_from_confusions,
)

AGE_GROUPS = ["child", "adult", "older"]


def _predictor(name, group, degenerate="", baseline=False):
    info = TrainingInfo(name, [name], group, "compactcnn", "m2", "", "rescale", 32, LABELS, 1, 1, degenerate)
    return Predictor(info, None, baseline)


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


def test_cross_age_table_and_headline(predictions):
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
    heads = headline(table, AGE_GROUPS).set_index("train_age_group")
    assert heads.loc["child", "own_group_accuracy"] == 1.0
    assert heads.loc["child", "other_group_accuracy"] == pytest.approx(5 / 8)
    assert headline(table[table["train_age_group"] == table["test_age_group"]], AGE_GROUPS).empty


def test_slim_metrics_and_report(predictions):
    table = _cross_age(predictions)
    metrics = metrics_dict(table, headline(table, AGE_GROUPS))
    assert metrics["cross_age"]["child_on_older"] == {
        "accuracy": 0.625,
        "macro_f1": round(f1_score([0, 0, 1, 1, 2, 2, 3, 3], [0, 1, 1, 0, 2, 2, 3, 0], average="macro"), 4),
    }
    assert metrics["headline"]["older"] == {"own": 0.25, "other": 0.25}
    numbers = [v for cell in metrics["cross_age"].values() for v in cell.values()]
    assert len(numbers) == 8 and "cross_dataset" not in metrics
    report = report_markdown(table, headline(table, AGE_GROUPS), ["x"], [], 0.95, AGE_GROUPS)
    assert "own group higher" in report and "| child | older |" in report


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
    assert a == bootstrap_scores(y_true, y_pred, images, 4, 500, 0.95, seed=1)
    assert a != bootstrap_scores(y_true, y_pred, images, 4, 500, 0.95, seed=2)
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
