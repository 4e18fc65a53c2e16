"""Evaluation on hand-made predictions with hand-checked values."""

import numpy as np
import pandas as pd
import pytest
from conftest import LABELS, tiny_params

from fer_age.config import config_from_dict
from fer_age.evaluate import (
    bootstrap_scores,
    classification_rows,
    cross_age_table,
    cross_dataset_table,
    headline,
    metrics_dict,
    prediction_frame,
)
from fer_age.train import degenerate_reason


@pytest.fixture
def config():
    return config_from_dict(tiny_params())  # SAMPLE-CHILD (child), SAMPLE-OLDER (older)


def _info(dataset, group, degenerate=""):
    return {"model": "compactcnn", "head": "m2", "dataset": dataset, "age_group": group,
            "degenerate": degenerate}


def _frame(config, info, test, true, predicted):
    probabilities = np.eye(4)[predicted]
    return prediction_frame(info, test, config, [f"{test}/{i}.png" for i in range(len(true))],
                            np.array(true), probabilities)


@pytest.fixture
def predictions(config):
    child, older = _info("SAMPLE-CHILD", "child"), _info("SAMPLE-OLDER", "older", "predicts only 'Angry'")
    true = [0, 0, 1, 1, 2, 2, 3, 3]
    return pd.concat([
        _frame(config, child, "SAMPLE-CHILD", true, [0, 0, 1, 1, 2, 2, 3, 3]),  # 8/8
        _frame(config, child, "SAMPLE-OLDER", true, [0, 1, 1, 0, 2, 2, 3, 0]),  # 5/8
        _frame(config, older, "SAMPLE-CHILD", true, [0] * 8),  # 2/8
        _frame(config, older, "SAMPLE-OLDER", true, [0] * 8),  # 2/8
    ], ignore_index=True)


def test_complet_result_rows(predictions):
    rows = classification_rows(predictions, LABELS)
    pair = rows[rows["key"] == "CompactCNN_m2_SAMPLE-CHILD_TestOnSAMPLE-OLDER"].set_index("class")
    assert list(pair.index) == ["Angry", "Fear", "Happy", "Sad", "macro avg", "weighted avg", "accuracy"] or \
        set(pair.index) == {"Angry", "Fear", "Happy", "Sad", "accuracy", "macro avg", "weighted avg"}
    # Angry: true {0,1}, predicted 0 at rows 0, 3, 7 -> precision 1/3, recall 1/2
    assert pair.loc["Angry", "precision"] == pytest.approx(1 / 3)
    assert pair.loc["Angry", "recall"] == pytest.approx(0.5)
    assert pair.loc["Angry", "f1_score"] == pytest.approx(0.4)
    assert pair.loc["Happy", "f1_score"] == pytest.approx(1.0)
    assert pair.loc["accuracy", "f1_score"] == pytest.approx(5 / 8)
    assert pair.loc["accuracy", "support"] == 8
    assert pair.loc["Sad", "support"] == 2
    assert pair["train_age_group"].iat[0] == "child" and pair["test_age_group"].iat[0] == "older"
    assert not pair["degenerate"].any()
    flagged = rows[rows["train_dataset"] == "SAMPLE-OLDER"]
    assert flagged["degenerate"].all() and (flagged["degenerate_reason"] == "predicts only 'Angry'").all()
    assert len(rows) == 4 * 7


def test_cross_age_and_dataset_tables(predictions, config):
    table = cross_age_table(predictions, config).set_index(["train_age_group", "test_age_group"])
    assert table.loc[("child", "child"), "accuracy"] == 1.0
    assert table.loc[("child", "older"), "accuracy"] == pytest.approx(5 / 8)
    assert table.loc[("older", "older"), "accuracy"] == pytest.approx(0.25)
    assert table.loc[("child", "older"), "n"] == 8
    assert table.loc[("older", "child"), "degenerate_models"] == "SAMPLE-OLDER"
    assert table.loc[("child", "child"), "degenerate_models"] == ""
    # one class predicted: F1 of Angry = 2*2/(2*2+6+0) = 0.4, others 0 -> macro 0.1
    assert table.loc[("older", "older"), "macro_f1"] == pytest.approx(0.1)
    low, high = table.loc[("child", "older"), ["accuracy_ci_low", "accuracy_ci_high"]]
    assert low <= 5 / 8 <= high and low < high
    assert table.loc[("child", "child"), "accuracy_ci_low"] == 1.0  # perfect predictions: no spread
    matrix = cross_dataset_table(predictions, config)
    assert len(matrix) == 4 and set(matrix["n"]) == {8}


def test_metrics_file_and_headline(predictions, config):
    cross_age = cross_age_table(predictions, config)
    heads = headline(cross_age).set_index("train_age_group")
    assert heads.loc["child", "own_group_accuracy"] == 1.0
    assert heads.loc["child", "other_group_accuracy"] == pytest.approx(5 / 8)
    metrics = metrics_dict(cross_age, cross_dataset_table(predictions, config), headline(cross_age))
    assert metrics["cross_age"]["child_on_older"]["accuracy"] == 0.625
    assert metrics["cross_age"]["child_on_older"]["n"] == 8
    assert metrics["cross_dataset"]["SAMPLE-OLDER_on_SAMPLE-CHILD"]["accuracy"] == 0.25
    assert metrics["headline"]["older"] == {"own_group_accuracy": 0.25, "other_group_accuracy": 0.25}
    own_only = cross_age[cross_age["train_age_group"] == cross_age["test_age_group"]]
    assert headline(own_only).empty  # no other-group side: no headline statement, in metrics or report
    assert metrics_dict(own_only, cross_dataset_table(predictions, config), headline(own_only))["headline"] == {}


def test_bootstrap_is_seeded_and_matches_sklearn():
    rng = np.random.default_rng(3)
    y_true, y_pred = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    a = bootstrap_scores(y_true, y_pred, 4, 500, 0.95, seed=1)
    assert a == bootstrap_scores(y_true, y_pred, 4, 500, 0.95, seed=1)
    assert a["accuracy"] == pytest.approx((y_true == y_pred).mean())
    assert a["accuracy_ci_low"] < a["accuracy"] < a["accuracy_ci_high"]
    assert a["macro_f1_ci_low"] < a["macro_f1"] < a["macro_f1_ci_high"]


def test_degenerate_guard():
    y = np.array([0, 1, 2, 3] * 5)
    assert "only 'Fear'" in degenerate_reason(y, np.ones_like(y), LABELS)
    assert "chance" in degenerate_reason(y, np.roll(y, 1), LABELS)
    assert degenerate_reason(y, y, LABELS) == ""
