"""Models on real photos: the off-the-shelf FER2013 model against models trained here, on the same test images.

Usage:
    python benchmarks/real_photos.py --data COPY_OF/real-photos/MUXDEV --labels Disgust Happy Neutral Surprise \\
        [--seeds 42 43 44] [--training-seeds K] [--work /tmp/fer-age-bench] [--variant NAME:key=value,...] \\
        [--flip-average] [--extra COPY_OF/real-photos/MUXDEV]

Runs the pipeline's own commands in a scratch project (FOLDER is read, never written): crop once, then per
seed a subject-disjoint split and, per variant, K trainings on it (``fer-age train``; training seeds seed, seed +
1000, ...; K = 1: the seed draws both), and scores every model and the untrained FER2013 baseline on that seed's
test split. Prints per variant the mean and spread over all its models of test accuracy and macro-F1 (and, with
K > 1, each split's mean), the training time, and writes ``results.json`` in the work folder; per model also
its test log loss and the baseline's errors it fixes and right answers it breaks. With ``--extra FOLDER``,
every usable photo of FOLDER (the study's labels only) of a subject not in --data joins each training split after
``fer-age split`` (validation and test stay --data's own): the own-group model with another dataset's faces.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import accuracy_score, f1_score, log_loss

from fer_age.contracts import USABLE, array_paths, read_crop_report
from fer_age.faces.images import square
from fer_age.modeling.selection import soup_seeds

EXTRA = "EXTRA"  # the --extra dataset in the scratch project
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


def write_params(
    work: Path, labels: list[str], seed: int, settings: dict, training_seeds: int = 1, extra: bool = False
) -> None:
    """Params for one split seed: ``training_seeds`` trainings on it, the first with the split's own seed (the seeds
    of a soup of that many runs, so that such a soup averages exactly these models); ``extra``: with the EXTRA
    dataset (cropped, never split)."""
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    params.update(seed=seed, seeds=soup_seeds(seed, training_seeds), labels=labels, img_size=48)
    names = ["REAL", EXTRA] if extra else ["REAL"]
    params["datasets"] = {n: {"raw": n, "age_group": "adult", "subject_pattern": SUBJECT_PATTERN} for n in names}
    params["sample"]["datasets"] = {}
    for key, value in settings.items():
        section = params
        *parents, leaf = key.split(".")
        for parent in parents:
            section = section[parent]
        section[leaf] = value
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def extra_training_rows(extra_report: pd.DataFrame, subjects: set[str]) -> pd.DataFrame:
    """The crop report rows of the extra dataset that may join a training split: usable crops of the study's labels
    (labelled) whose subject is not one of ``subjects`` (the tested dataset's, so no test face is trained on)."""
    usable = extra_report["status"].isin(USABLE) & extra_report["label"].notna()
    return extra_report[usable & ~extra_report["subject"].isin(subjects)]


def add_extra_training_images(work: Path, img_size: int) -> tuple[int, int]:
    """Append EXTRA's :func:`extra_training_rows` to REAL's training arrays (after ``fer-age split REAL``); the
    number of images the split had and the number added."""
    crops = work / "data" / "cropped"
    rows = extra_training_rows(read_crop_report(crops / EXTRA), set(read_crop_report(crops / "REAL")["subject"]))
    images = [
        square(cv2.cvtColor(cv2.imread(str(crops / EXTRA / o)), cv2.COLOR_BGR2RGB), img_size) for o in rows.output
    ]
    x_path, y_path = array_paths(work / "data" / "splits" / "REAL", "train")
    x, y = np.load(x_path), np.load(y_path)
    np.save(x_path, np.concatenate([x, np.stack(images)]))
    np.save(y_path, np.concatenate([y, rows["label"].to_numpy(np.int64)]))
    return len(y), len(rows)


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
    parser.add_argument("--extra", type=Path, help="a folders-layout dataset whose photos join each training split")
    args = parser.parse_args()
    variants = dict(map(parse_variant, args.variant)) or DEFAULT_VARIANTS
    work = args.work
    (work / "data" / "raw").mkdir(parents=True, exist_ok=True)
    folders = {"REAL": args.data, **({EXTRA: args.extra} if args.extra else {})}
    write_params(work, args.labels, args.seeds[0], {}, extra=bool(args.extra))
    for name, folder in folders.items():
        link = work / "data" / "raw" / name
        if not link.exists():
            link.symlink_to(folder.resolve())
        if not (work / "data" / "cropped" / name / "crop_report.csv").exists():
            print(fer_age(work, "crop", name).strip().splitlines()[-1])
    rows: dict[str, list[dict]] = {"off-the-shelf FER2013 (no training)": []}
    for seed in args.seeds:
        for name, settings in variants.items():
            write_params(work, args.labels, seed, settings, args.training_seeds, bool(args.extra))
            fer_age(work, "split", "REAL")  # the same subjects per seed; arrays at the variant's img_size
            if args.extra:
                img_size = yaml.safe_load((work / "params.yaml").read_text())["img_size"]
                own, added = add_extra_training_images(work, img_size)
                print(f"seed {seed}: {own} training images of --data and {added} of --extra", flush=True)
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
