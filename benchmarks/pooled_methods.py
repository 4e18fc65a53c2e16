"""Mixed-age models on real photos: pooled training methods against own-group models and the off-the-shelf model.

Usage:
    python benchmarks/pooled_methods.py --data COPY_OF/real-photos/MUXAGEDEV --labels Happy Neutral \\
        --group AGEDEV-YOUNG=young --group AGEDEV-OLDER=older [--seeds 42 43 44] [--training-seeds K] \\
        [--set key=value ...] [--work /tmp/fer-age-pooled] [--method NAME:key=value,key=value ...]

Runs the pipeline's own commands in a scratch study project (each FOLDER/<name> is read, never written): crop
every group's folder once, then per seed (which also draws the subject-disjoint splits) a split and an own-group
model per folder, one pooled model (``pool.models: all``) per method, and ``fer-age evaluate`` after each; with
``--training-seeds K``, K of each (training seeds seed, seed + 1000, ...: other data orders, augmentations and
dropout on the same split), scored as their mean. Prints per method the mean and spread over split seeds of test
macro-F1 per age group, the worst group and the gap between groups, next to the own-group models and the
off-the-shelf FER2013 model on the same test images, and per seed each model's macro-F1 gain over the
off-the-shelf model with its paired interval (``baseline_gains.csv``); with K > 1, also each model's ensemble
over its K training seeds (class probabilities averaged per test image). ``--set`` applies params to every model
(``--set train.soup=1`` for single runs). Writes ``results.json`` in the work folder, and per seed and method the
test predictions of every model and the baseline (``predictions/<seed>-<method>.csv``).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from real_photos import SUBJECT_PATTERN, fer_age, parse_variant, write_params
from sklearn.metrics import f1_score

from fer_age.contracts import OWN_AND_POOLED
from fer_age.modeling.selection import soup_seeds

START = {"model": "minixception", "head": "default", "train.weights": "fer2013", "evaluate.baselines": ["fer2013"]}
DEFAULT_METHODS = {
    "pooled, erm": {"pool.method": "erm"},
    "pooled, balanced": {"pool.method": "balanced"},
    "pooled, groupdro": {"pool.method": "groupdro"},
    "pooled, erm, overall selection": {"pool.method": "erm", "pool.selection": "overall"},
}
OWN = "own age group"
BASELINE = "off-the-shelf FER2013 (no training)"


def study_settings(groups: dict[str, str], settings: dict) -> dict:
    """Params for a study of ``groups`` (folder -> age group) with the pooled model and the baseline."""
    datasets = {name: {"raw": name, "age_group": g, "subject_pattern": SUBJECT_PATTERN} for name, g in groups.items()}
    return {**START, "datasets": datasets, "age_groups": age_groups_of(groups), "pool.models": "all", **settings}


def age_groups_of(groups: dict[str, str]) -> list[str]:
    """The age groups of ``groups`` (folder -> age group), each once, in the order given."""
    return list(dict.fromkeys(groups.values()))


def group_scores(cross_age: pd.DataFrame, groups: dict[str, str]) -> dict[str, dict[str, float]]:
    """Test macro-F1 per age group of the pooled model, the own-group models and the baseline (and of the pooled
    and own-group models together, ``POOL-all+own``, where evaluated), from one ``cross_age_accuracy.csv``."""
    f1 = cross_age.set_index(["train_age_group", "test_age_group"])["macro_f1"]
    age_groups = age_groups_of(groups)
    scores = {
        "pooled": {g: float(f1[("POOL-all", g)]) for g in age_groups},
        OWN: {g: float(f1[(g, g)]) for g in age_groups},
        BASELINE: {g: float(f1[("FER2013", g)]) for g in age_groups},
    }
    if OWN_AND_POOLED in f1.index.get_level_values(0):  # evaluate.own_and_pooled
        scores[OWN_AND_POOLED] = {g: float(f1[(OWN_AND_POOLED, g)]) for g in age_groups}
    return scores


def probabilities(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Mean class probabilities per test image of the rows in ``frame`` (an ensemble over its models and seeds)."""
    return frame.groupby(["test_age_group", "test_dataset", "source", "true"], sort=False)[columns].mean()


def macro_f1(probs: pd.DataFrame, n_classes: int) -> dict[str, float]:
    """Test macro-F1 per age group of averaged class probabilities."""
    scores = {}
    for group, cell in probs.groupby(level="test_age_group", sort=False):
        true = cell.index.get_level_values("true")
        predicted = cell.to_numpy().argmax(axis=1)
        scores[group] = float(f1_score(true, predicted, labels=range(n_classes), average="macro", zero_division=0))
    return scores


def ensemble_scores(predictions: pd.DataFrame, labels: list[str], groups: dict[str, str]) -> dict[str, dict]:
    """Test macro-F1 per age group of each trained model's ensemble over its training seeds (their class
    probabilities averaged per test image), from one ``predictions.csv``: keys ``pooled`` and ``own age group``."""
    trained = predictions[~predictions["baseline"] & ~predictions["seen_in_training"]]
    columns = [f"p_{label}" for label in labels]
    models = {
        "pooled": trained[trained["train_age_group"] == "POOL-all"],
        OWN: trained[trained["train_age_group"] == trained["test_age_group"]],
    }
    order = age_groups_of(groups)
    scores = {name: macro_f1(probabilities(rows, columns), len(labels)) for name, rows in models.items()}
    return {name: {g: by_group[g] for g in order} for name, by_group in scores.items()}


def paired_gains(gains: pd.DataFrame, trained: list[str]) -> dict[str, list[float]]:
    """Per test age group, the test macro-F1 gain over the off-the-shelf model of the models trained on ``trained``
    and its paired interval (gain, low, high), from one ``baseline_gains.csv``."""
    f1 = gains[(gains["score"] == "macro_f1") & gains["train_age_group"].isin(trained)]
    return {
        r.test_age_group: [round(r.gain, 4), round(r.gain_ci_low, 4), round(r.gain_ci_high, 4)] for r in f1.itertuples()
    }


def gains_text(gains: dict[str, list[float]]) -> str:
    """``paired_gains`` in words: ``young +0.021 [-0.046, +0.094], ...``."""
    return ", ".join(f"{group} {g:+.3f} [{low:+.3f}, {high:+.3f}]" for group, (g, low, high) in gains.items())


def summary_row(name: str, per_seed: list[dict[str, float]]) -> str:
    """One table row: mean ± SD over seeds per age group, then the worst group and the gap of the means."""
    groups = list(per_seed[0])
    values = {g: np.array([scores[g] for scores in per_seed]) for g in groups}
    means = {g: v.mean() for g, v in values.items()}
    cells = [f"{means[g]:.3f} ± {values[g].std():.3f} ({' / '.join(f'{x:.3f}' for x in values[g])})" for g in groups]
    worst, gap = min(means.values()), max(means.values()) - min(means.values())
    return f"| {name} | {' | '.join(cells)} | {worst:.3f} | {gap:.3f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a folder of folders-layout datasets (read only)")
    parser.add_argument("--labels", nargs="+", required=True)
    parser.add_argument("--group", action="append", required=True, help="FOLDER=AGE_GROUP, one per dataset folder")
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44])
    parser.add_argument("--training-seeds", type=int, default=1, help="models per split, group and method")
    parser.add_argument("--work", type=Path, default=Path("/tmp/fer-age-pooled"))
    parser.add_argument("--method", action="append", default=[], help="NAME:key=value,... (params keys)")
    parser.add_argument("--set", action="append", default=[], help="key=value for every model (params keys)")
    args = parser.parse_args()
    groups = dict(item.split("=", 1) for item in args.group)
    methods = dict(map(parse_variant, args.method)) or DEFAULT_METHODS
    common = parse_variant("every model:" + ",".join(args.set))[1]
    work = args.work
    (work / "data" / "raw").mkdir(parents=True, exist_ok=True)
    (work / "predictions").mkdir(exist_ok=True)
    write_params(work, args.labels, args.seeds[0], study_settings(groups, common))
    for name in groups:
        link = work / "data" / "raw" / name
        if not link.exists():
            link.symlink_to((args.data / name).resolve())
        if not (work / "data" / "cropped" / name / "crop_report.csv").exists():
            print(fer_age(work, "crop", name).strip().splitlines()[-1], flush=True)
    rows: dict[str, list[dict[str, float]]] = {BASELINE: [], OWN: []}
    gains: dict[str, list[dict[str, list[float]]]] = {OWN: []}
    for seed in args.seeds:
        training_seeds = [str(s) for s in soup_seeds(seed, args.training_seeds)]
        write_params(work, args.labels, seed, study_settings(groups, common), args.training_seeds)
        for name in groups:
            fer_age(work, "split", name)
            for training_seed in training_seeds:
                log = fer_age(work, "train", name, "--seed", training_seed).strip().splitlines()[-1]
                print(f"seed {seed}, training seed {training_seed} | {log}", flush=True)
        for method, settings in methods.items():
            write_params(work, args.labels, seed, study_settings(groups, {**common, **settings}), args.training_seeds)
            logs = [fer_age(work, "pool", "--seed", s).strip().splitlines()[-1] for s in training_seeds]
            log = " | ".join(logs)
            fer_age(work, "evaluate")  # every training seed's models; the cross-age table holds their means
            shutil.copyfile(work / "results" / "predictions.csv", work / "predictions" / f"{seed}-{method}.csv")
            scores = group_scores(pd.read_csv(work / "results" / "cross_age_accuracy.csv"), groups)
            rows.setdefault(method, []).append(scores["pooled"])
            if OWN_AND_POOLED in scores:
                rows.setdefault(f"{method}, with the own-group model ({OWN_AND_POOLED})", []).append(
                    scores[OWN_AND_POOLED]
                )
            if args.training_seeds > 1:  # the same models' class probabilities averaged: one ensemble per split
                ensembles = ensemble_scores(pd.read_csv(work / "results" / "predictions.csv"), args.labels, groups)
                rows.setdefault(f"{method}, ensemble of {args.training_seeds}", []).append(ensembles["pooled"])
            paired = pd.read_csv(work / "results" / "baseline_gains.csv")  # Bonferroni over own and pooled gains
            gains.setdefault(method, []).append(paired_gains(paired, ["POOL-all"]))
            print(f"seed {seed} | {method}: {scores['pooled']} | {log}", flush=True)
            print(f"seed {seed} | {method}: gain over off the shelf {gains_text(gains[method][-1])}", flush=True)
        gains[OWN].append(paired_gains(paired, age_groups_of(groups)))
        print(f"seed {seed} | {OWN}: gain over off the shelf {gains_text(gains[OWN][-1])}", flush=True)
        rows[OWN].append(scores[OWN])
        if args.training_seeds > 1:
            rows.setdefault(f"{OWN}, ensemble of {args.training_seeds}", []).append(ensembles[OWN])
        rows[BASELINE].append(scores[BASELINE])
    age_groups = age_groups_of(groups)
    print(f"\n| trained on | {' | '.join(age_groups)} | worst group | gap |")
    print("|---|" + "---|" * (len(age_groups) + 2))
    for name, per_seed in rows.items():
        print(summary_row(name, per_seed))
    (work / "results.json").write_text(json.dumps({"scores": rows, "paired_gains": gains}, indent=2))


if __name__ == "__main__":
    from fer_age.runtime import import_tensorflow

    import_tensorflow()
    main()
