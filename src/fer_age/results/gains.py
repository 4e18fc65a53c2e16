"""Trained models against the off-the-shelf baseline on the same test images: is training worth it?

The gain is a trained model's score minus the baseline's on the test images both predicted. Its interval is
paired: each bootstrap replicate draws the same test images for both (so what the images share cancels out) and
draws the trained models' seeds, as every interval of the evaluation does. Beside it, how many of those images
a trained model answers differently: fixed (the baseline wrong, the model right) and broken (the reverse).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fer_age.results.bootstrap import SCORES, image_ids, interval, replicate_scores, spread
from fer_age.results.gaps import verdict

GAIN_COLUMNS = [
    "kind",
    "train_age_group",
    "baseline",
    "test_age_group",
    "score",
    "trained_value",
    "baseline_value",
    "gain",
    "gain_sd",
    "gain_ci_low",
    "gain_ci_high",
    "simultaneous_level",
    "comparisons",
    "verdict",
    "n_seeds",
    "n_images",
    "images_fixed",
    "images_broken",
]


def gain_comparisons(predictions: pd.DataFrame, age_groups: list[str]) -> list[tuple[str, str, str, str]]:
    """(kind, trained group, baseline, test age group) of every gain the study reports: each age group's models on
    their own group's test images (``own_group``) and each mixed-age model on every age group (``mixed_age``),
    against every baseline tested on the same age group."""
    tested = predictions.groupby("train_age_group", sort=False)["test_age_group"].unique().map(set)
    baselines = [str(b) for b in predictions.loc[predictions["baseline"], "train_age_group"].unique()]
    found = []
    for name, groups in tested.items():
        if name in baselines:
            continue
        own = name in age_groups
        for group in [name] if own else age_groups:
            found += [
                ("own_group" if own else "mixed_age", str(name), base, group)
                for base in baselines
                if group in groups and group in tested[base]
            ]
    return found


def changed_answers(trained: pd.DataFrame, base: pd.DataFrame) -> tuple[float, float]:
    """Test images a trained model answers right where the baseline is wrong (fixed) and wrong where it is right
    (broken), counted per trained model (training dataset and seed) and averaged over them: where a gain comes
    from. Where every model predicts every image, an accuracy gain is ``(fixed - broken) / n_images``."""
    base_right = pd.Series((base["true"] == base["predicted"]).to_numpy(), index=image_ids(base))
    was_right = base_right.loc[image_ids(trained)].to_numpy()  # one baseline prediction per image
    right = (trained["true"] == trained["predicted"]).to_numpy()
    changed = trained[["train_dataset", "seed"]].assign(fixed=right & ~was_right, broken=was_right & ~right)
    per_model = changed.groupby(["train_dataset", "seed"])[["fixed", "broken"]].sum()
    return float(per_model["fixed"].mean()), float(per_model["broken"].mean())


def baseline_gain_table(
    predictions: pd.DataFrame, age_groups: list[str], n_classes: int, samples: int, level: float, seed: int
) -> pd.DataFrame:
    """One row per gain and score (columns ``GAIN_COLUMNS``): both scores, the gain (mean over the trained models'
    seeds), its SD over seeds, its paired simultaneous interval (Bonferroni over the gains) and the verdict. Empty,
    with its columns, without a baseline."""
    found = gain_comparisons(predictions, age_groups)
    simultaneous = 1 - (1 - level) / max(len(found), 1)
    rows = []
    for kind, trained_on, baseline, group in found:
        tested = predictions[predictions["test_age_group"] == group]
        trained, base = (tested[tested["train_age_group"] == name] for name in (trained_on, baseline))
        shared = np.intersect1d(image_ids(trained), image_ids(base))  # images a model saw in training are out
        trained, base = (frame[np.isin(image_ids(frame), shared)] for frame in (trained, base))
        a = replicate_scores(trained, n_classes, samples, seed)
        b = replicate_scores(base, n_classes, samples, seed)  # the same images and stream: the same image draws
        fixed, broken = changed_answers(trained, base)
        for score in SCORES:
            per_seed = a.per_seed[score] - b.point(score)
            low, high = interval(a.replicates[score] - b.replicates[score], simultaneous)
            rows.append(
                {
                    "kind": kind,
                    "train_age_group": trained_on,
                    "baseline": baseline,
                    "test_age_group": group,
                    "score": score,
                    "trained_value": a.point(score),
                    "baseline_value": b.point(score),
                    "gain": float(per_seed.mean()),
                    "gain_sd": spread(per_seed),
                    "gain_ci_low": low,
                    "gain_ci_high": high,
                    "simultaneous_level": simultaneous,
                    "comparisons": len(found),
                    "verdict": verdict("trained", "off the shelf", low, high),
                    "n_seeds": len(a.seeds),
                    "n_images": a.n_images,
                    "images_fixed": fixed,
                    "images_broken": broken,
                }
            )
    return pd.DataFrame(rows, columns=GAIN_COLUMNS)
