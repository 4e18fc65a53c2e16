"""Models on real photos: the off-the-shelf FER2013 model against models trained here, on the same test images.

Usage:
    python benchmarks/real_photos.py --data COPY_OF/real-photos/MUXDEV --labels Disgust Happy Neutral Surprise \\
        [--seeds 42 43 44] [--training-seeds K] [--work /tmp/fer-age-bench] [--variant NAME:key=value,...] \\
        [--flip-average]

Runs the pipeline's own commands in a scratch project (FOLDER is read, never written): crop once, then per
seed a subject-disjoint split and, per variant, K trainings on it (``fer-age train``; training seeds seed, seed +
1000, ...; K = 1: the seed draws both), and scores every model and the untrained FER2013 baseline on that seed's
test split. Prints per variant the mean and spread over all its models of test accuracy and macro-F1 (and, with
K > 1, each split's mean), the training time, and writes ``results.json`` in the work folder; per model also
its test log loss and the baseline's errors it fixes and right answers it breaks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from sklearn.metrics import accuracy_score, f1_score, log_loss

from fer_age.modeling.selection import soup_seeds

SUBJECT_PATTERN = r"^(.+?)_\d+\."  # the photo's subject in the real-photos folders: its name up to _<number>.
DEFAULT_VARIANTS = {
    "minixception fine-tuned from fer2013": {"model": "minixception", "head": "default", "train.weights": "fer2013"},
    "minixception from scratch": {"model": "minixception", "head": "m2", "train.weights": "none"},
    "compact CNN, its defaults": {"model": "compactcnn", "head": "m2"},
    "compact CNN, rotation/zoom 0.1": {"model": "compactcnn", "head": "m2", "train.rotation": 0.1, "train.zoom": 0.1},
}


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, settings = text.partition(":")
    pairs = (item.split("=", 1) for item in settings.split(",") if item)
    return name, {key: yaml.safe_load(value) for key, value in pairs}


def write_params(work: Path, labels: list[str], seed: int, settings: dict, training_seeds: int = 1) -> None:
    """Params for one split seed: ``training_seeds`` trainings on it, the first with the split's own seed (the seeds
    of a soup of that many runs, so that such a soup averages exactly these models)."""
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    params.update(seed=seed, seeds=soup_seeds(seed, training_seeds), labels=labels, img_size=48)
    params["datasets"] = {"REAL": {"raw": "REAL", "age_group": "adult", "subject_pattern": SUBJECT_PATTERN}}
    params["sample"]["datasets"] = {}
    for key, value in settings.items():
        section = params
        *parents, leaf = key.split(".")
        for parent in parents:
            section = section[parent]
        section[leaf] = value
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def summarise(runs: list[dict]) -> dict:
    """Mean and SD over all of a variant's models (every split and training seed), and each split's mean."""
    f1 = np.array([r["macro_f1"] for r in runs])
    splits = sorted({r["seed"] for r in runs})
    return {
        "accuracy": (np.mean([r["accuracy"] for r in runs]), np.std([r["accuracy"] for r in runs])),
        "macro_f1": (f1.mean(), f1.std()),
        "split_means": [float(np.mean([r["macro_f1"] for r in runs if r["seed"] == s])) for s in splits],
        "values": f1.tolist(),
    }


def fer_age(work: Path, *args: str) -> str:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "fer-age"), *args],
        cwd=work,
        capture_output=True,
        text=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"},
    )
    if result.returncode != 0:
        raise SystemExit(f"fer-age {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return result.stdout


def scores(y_true: np.ndarray, probabilities: np.ndarray) -> dict:
    """Accuracy, macro-F1 and log loss of one model's class probabilities on the test images."""
    y_pred, classes = probabilities.argmax(axis=1), range(probabilities.shape[1])
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0)),
        "log_loss": float(log_loss(y_true, probabilities, labels=classes)),
    }


def changed_answers(y_true: np.ndarray, trained: np.ndarray, baseline: np.ndarray) -> dict:
    """The baseline's wrong answers the trained model gets right (fixed), its right ones the model gets wrong
    (broken), as ``results/baseline_gains.csv`` counts them, and the baseline's errors."""
    right, was_right = trained.argmax(axis=1) == y_true, baseline.argmax(axis=1) == y_true
    return {
        "fixed": int((right & ~was_right).sum()),
        "broken": int((was_right & ~right).sum()),
        "baseline_errors": int((~was_right).sum()),
    }


def test_scores(
    work: Path, labels: list[str], flip_average: bool = False, seed: int | None = None
) -> tuple[dict, dict]:
    """Scores of the model of training seed ``seed`` (None: the first) and of the FER2013 baseline on the current test
    split (``flip_average``: each image's probabilities averaged with its mirror image's, for both, as
    ``evaluate.flip_average`` does)."""
    from fer_age.modeling.inference import (
        baseline_predictor,
        load_keras_model,
        load_test_splits,
        predict_probabilities,
        trained_models,
    )

    cwd = Path.cwd()
    os.chdir(work)
    try:
        test = load_test_splits(["REAL"], Path("data/splits"))["REAL"]
        out, probabilities = {}, {}
        if seed is None:
            seed = yaml.safe_load(Path("params.yaml").read_text())["seeds"][0]
        trained = trained_models(["REAL"], [seed])[0]
        for kind, predictor in (("trained", trained), ("baseline", baseline_predictor(labels, trained.info.img_size))):
            model = load_keras_model(predictor)
            info = predictor.info
            probabilities[kind] = predict_probabilities(
                model, test.images, info.model, info.preprocessing, flip_average
            )
            out[kind] = scores(test.labels, probabilities[kind])
        changed = changed_answers(test.labels, probabilities["trained"], probabilities["baseline"])
        return {**out["trained"], **changed}, {**out["baseline"], "n": len(test.labels)}
    finally:
        os.chdir(cwd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a folders-layout dataset (read only)")
    parser.add_argument("--labels", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44], help="split seeds")
    parser.add_argument("--training-seeds", type=int, default=1, help="trainings per split and variant")
    parser.add_argument("--work", type=Path, default=Path("/tmp/fer-age-bench"))
    parser.add_argument("--variant", action="append", default=[], help="NAME:key=value,... (params keys)")
    parser.add_argument("--flip-average", action="store_true", help="score models and baseline with flips")
    args = parser.parse_args()
    variants = dict(map(parse_variant, args.variant)) or DEFAULT_VARIANTS
    work = args.work
    (work / "data" / "raw").mkdir(parents=True, exist_ok=True)
    link = work / "data" / "raw" / "REAL"
    if not link.exists():
        link.symlink_to(args.data.resolve())
    write_params(work, args.labels, args.seeds[0], {})
    if not (work / "data" / "cropped" / "REAL" / "crop_report.csv").exists():
        print(fer_age(work, "crop", "REAL").strip().splitlines()[-1])
    rows: dict[str, list[dict]] = {"off-the-shelf FER2013 (no training)": []}
    for seed in args.seeds:
        for name, settings in variants.items():
            write_params(work, args.labels, seed, settings, args.training_seeds)
            fer_age(work, "split", "REAL")  # the same subjects per seed; arrays at the variant's img_size
            for training_seed in soup_seeds(seed, args.training_seeds):
                started = time.perf_counter()
                log = fer_age(work, "train", "REAL", "--seed", str(training_seed)).strip().splitlines()[-1]
                seconds = time.perf_counter() - started
                trained, baseline = test_scores(work, args.labels, args.flip_average, training_seed)
                rows.setdefault(name, []).append(
                    {**trained, "seed": seed, "training_seed": training_seed, "seconds": seconds, "log": log}
                )
                print(
                    f"seed {seed}, training seed {training_seed} | {name}: accuracy {trained['accuracy']:.3f}, "
                    f"macro-F1 {trained['macro_f1']:.3f}, log loss {trained['log_loss']:.3f} ({seconds:.0f} s) | "
                    f"baseline macro-F1 {baseline['macro_f1']:.3f}, log loss {baseline['log_loss']:.3f} | of the "
                    f"baseline's {trained['baseline_errors']} errors fixed {trained['fixed']}, of its right "
                    f"answers broken {trained['broken']} | {log}",
                    flush=True,
                )
        rows["off-the-shelf FER2013 (no training)"].append({**baseline, "seed": seed, "seconds": 0.0})
    print(f"\n| model | test accuracy | test macro-F1 | train s | per model; per split (n = {baseline['n']}) |")
    print("|---|---|---|---|---|")
    for name, runs in rows.items():
        summary = summarise(runs)
        (acc, acc_sd), (f1, f1_sd) = summary["accuracy"], summary["macro_f1"]
        per_split = " / ".join(f"{v:.3f}" for v in summary["split_means"]) if args.training_seeds > 1 else ""
        print(
            f"| {name} | {acc:.3f} ± {acc_sd:.3f} | {f1:.3f} ± {f1_sd:.3f} | "
            f"{np.mean([r['seconds'] for r in runs]):.0f} | {' / '.join(f'{v:.3f}' for v in summary['values'])}"
            + (f"; {per_split}" if per_split else "")
            + " |"
        )
    (work / "results.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    from fer_age.runtime import import_tensorflow

    import_tensorflow()
    main()
