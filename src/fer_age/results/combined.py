"""Own and pooled models together (``evaluate.own_and_pooled``): for each test image, the class probabilities of
the pooled model (``POOL-all``) and of the model trained on the image's own dataset, same seed, averaged. The
combination is scored like any other model, as rows ``POOL-all+own``; nothing is trained or selected."""

from __future__ import annotations

import pandas as pd

from fer_age.contracts import OWN_AND_POOLED, pool_name

IMAGE_KEYS = ["model", "head", "seed", "test_dataset", "source"]


def own_and_pooled_rows(predictions: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """Prediction rows of ``POOL-all+own`` for every test image both models predicted (the columns of
    ``predictions``); empty where there is no pooled model. Seen in training or degenerate where either model is."""
    trained = predictions[~predictions["baseline"]]
    pooled = trained[trained["train_dataset"] == pool_name(None)]
    own = trained[trained["train_dataset"] == trained["test_dataset"]]
    pairs = pooled.merge(own, on=IMAGE_KEYS, suffixes=("", "_own"), validate="one_to_one")
    columns = [f"p_{label}" for label in labels]
    mean = (pairs[columns].to_numpy() + pairs[[f"{c}_own" for c in columns]].to_numpy()) / 2
    rows = pairs[predictions.columns].copy()
    rows[["train_dataset", "train_age_group"]] = OWN_AND_POOLED
    rows[columns] = mean.round(6)
    rows["predicted"] = mean.argmax(axis=1)
    rows["predicted_label"] = [labels[i] for i in rows["predicted"]]
    rows["seen_in_training"] = pairs["seen_in_training"] | pairs["seen_in_training_own"]
    rows["degenerate"] = pairs["degenerate"] | pairs["degenerate_own"]
    reasons = pairs[["degenerate_reason", "degenerate_reason_own"]].fillna("").astype(str)
    rows["degenerate_reason"] = ["; ".join(r for r in pair if r) for pair in reasons.itertuples(index=False)]
    return rows.reset_index(drop=True)
