"""Evaluate stage: every trained model on every dataset's test split, with CIs and reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import classification_report, confusion_matrix, f1_score

from fer_age.config import AGE_GROUPS, Config
from fer_age.models import model_spec
from fer_age.train import TRAINING_INFO

PAIR_KEYS = ["model", "head", "train_dataset", "train_age_group", "test_dataset", "test_age_group"]


def load_training_infos(config: Config, models_dir: Path) -> list[dict]:
    """The training record of every dataset's model, or a clear error naming what is missing."""
    infos = []
    for name in config.datasets:
        path = models_dir / name / TRAINING_INFO
        if not path.is_file():
            raise FileNotFoundError(f"no trained model for dataset '{name}': {path} is missing "
                                    f"(run `dvc repro train@{name}`)")
        info = json.loads(path.read_text())
        model_file = models_dir / name / info["model_file"]
        if not model_file.is_file():
            raise FileNotFoundError(f"model file {model_file} for dataset '{name}' is missing")
        infos.append({**info, "path": model_file})
    return infos


def predict_all(config: Config, infos: list[dict], splits_dir: Path) -> tuple[pd.DataFrame, dict]:
    """Per-image predictions of every model on every test split (each loaded once)."""
    import keras

    from fer_age.data import load_split, make_dataset
    from fer_age.models import preprocessing_fn

    tests = {}
    for name in config.datasets:
        images, labels = load_split(splits_dir / name, "test")
        manifest = pd.read_csv(splits_dir / name / "manifest.csv", keep_default_na=False)
        tests[name] = (images, labels, manifest[manifest["split"] == "test"]["source"].tolist())
    frames = []
    for info in infos:
        model = keras.models.load_model(info["path"], compile=False)
        preprocess = preprocessing_fn(info["model"], info["preprocessing"])
        for test_name, (images, labels, sources) in tests.items():
            probabilities = model.predict(make_dataset(images, labels, 64, preprocess), verbose=0)
            frames.append(prediction_frame(info, test_name, config, sources, labels, probabilities))
    return pd.concat(frames, ignore_index=True), tests


def prediction_frame(info: dict, test_name: str, config: Config, sources: list[str], labels: np.ndarray,
                     probabilities: np.ndarray) -> pd.DataFrame:
    """One row per test image: who predicted what, with class probabilities."""
    predicted = probabilities.argmax(axis=1)
    frame = pd.DataFrame({
        "model": info["model"], "head": info["head"], "train_dataset": info["dataset"],
        "train_age_group": info["age_group"], "test_dataset": test_name,
        "test_age_group": config.datasets[test_name].age_group, "source": sources,
        "true": labels.astype(int), "predicted": predicted.astype(int),
        "true_label": [config.labels[i] for i in labels], "predicted_label": [config.labels[i] for i in predicted],
    })
    for i, label in enumerate(config.labels):
        frame[f"p_{label}"] = probabilities[:, i].round(6)
    frame["degenerate"] = bool(info.get("degenerate"))
    frame["degenerate_reason"] = info.get("degenerate") or ""
    return frame


def study_key(model: str, head: str, train: str, test: str) -> str:
    """The original's row key, e.g. ``ResNet50V2_m1_CK_TestOnMUG``."""
    return f"{model_spec(model).display_name}_{head}_{train}_TestOn{test}"


def classification_rows(predictions: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """complet_result.csv: sklearn's classification report (output_dict) per model/test pair."""
    rows = []
    for keys, pair in predictions.groupby(PAIR_KEYS, sort=False):
        report = classification_report(pair["true"], pair["predicted"], labels=range(len(labels)),
                                        target_names=labels, output_dict=True, zero_division=0)
        context = dict(zip(PAIR_KEYS, keys))
        context["key"] = study_key(context["model"], context["head"], context["train_dataset"],
                                   context["test_dataset"])
        flags = {"degenerate": bool(pair["degenerate"].iat[0]), "degenerate_reason": pair["degenerate_reason"].iat[0]}
        for name, values in report.items():
            if name == "accuracy":  # as sklearn's text report: the score under f1-score, n as support
                values = {"precision": np.nan, "recall": np.nan, "f1-score": values, "support": len(pair)}
            rows.append({"key": context["key"], **context, "class": name, "precision": values["precision"],
                         "recall": values["recall"], "f1_score": values["f1-score"],
                         "support": int(values["support"]), **flags})
    return pd.DataFrame(rows)


def bootstrap_scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, samples: int, level: float,
                     seed: int) -> dict:
    """Accuracy and macro-F1 with percentile bootstrap confidence intervals (seeded)."""
    rng = np.random.default_rng(seed)
    n = len(y_true)
    idx = rng.integers(0, n, size=(samples, n))
    codes = y_true[idx] * n_classes + y_pred[idx] + (np.arange(samples) * n_classes * n_classes)[:, None]
    counts = np.bincount(codes.ravel(), minlength=samples * n_classes * n_classes)
    cm = counts.reshape(samples, n_classes, n_classes)
    tp = np.diagonal(cm, axis1=1, axis2=2)
    denominator = cm.sum(axis=1) + cm.sum(axis=2)  # 2TP + FP + FN
    f1 = np.divide(2 * tp, denominator, out=np.zeros(tp.shape, float), where=denominator > 0)
    accuracy = tp.sum(axis=1) / n
    low, high = (1 - level) / 2, 1 - (1 - level) / 2
    return {
        "n": int(n),
        "accuracy": float((y_true == y_pred).mean()),
        "accuracy_ci_low": float(np.quantile(accuracy, low)),
        "accuracy_ci_high": float(np.quantile(accuracy, high)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=range(n_classes), average="macro", zero_division=0)),
        "macro_f1_ci_low": float(np.quantile(f1.mean(axis=1), low)),
        "macro_f1_ci_high": float(np.quantile(f1.mean(axis=1), high)),
    }


def cross_scores(predictions: pd.DataFrame, by: list[str], config: Config) -> pd.DataFrame:
    """Scores per group of ``by`` columns (pooled over everything else), with CIs."""
    e = config.evaluate
    rows = []
    for keys, group in predictions.groupby(by, sort=False):
        scores = bootstrap_scores(group["true"].to_numpy(), group["predicted"].to_numpy(), len(config.labels),
                                  e.bootstrap_samples, e.confidence_level, config.seed)
        flagged = sorted(group.loc[group["degenerate"], "train_dataset"].unique())
        rows.append({**dict(zip(by, keys)), **scores, "n_models": group["train_dataset"].nunique(),
                     "degenerate_models": ";".join(flagged)})
    return pd.DataFrame(rows)


def cross_age_table(predictions: pd.DataFrame, config: Config) -> pd.DataFrame:
    """Accuracy per (train age group, test age group), pooled over the datasets of each group."""
    table = cross_scores(predictions, ["train_age_group", "test_age_group"], config)
    order = {g: i for i, g in enumerate(AGE_GROUPS)}
    table = table.sort_values(["train_age_group", "test_age_group"], key=lambda s: s.map(order))
    return table.reset_index(drop=True)


def cross_dataset_table(predictions: pd.DataFrame, config: Config) -> pd.DataFrame:
    """The per-dataset matrix (train x test dataset) in long form."""
    return cross_scores(predictions, ["train_dataset", "test_dataset", "train_age_group", "test_age_group"], config)


def _score_entry(row: pd.Series) -> dict:
    keys = ["n", "accuracy", "accuracy_ci_low", "accuracy_ci_high", "macro_f1", "macro_f1_ci_low", "macro_f1_ci_high"]
    return {k: (int(row[k]) if k == "n" else round(float(row[k]), 4)) for k in keys}


def headline(cross_age: pd.DataFrame) -> pd.DataFrame:
    """Own-group vs other-group accuracy per training age group (the study's headline).

    Groups tested only on their own age group, or never on it, are left out.
    """
    rows = []
    for group, part in cross_age.groupby("train_age_group", sort=False):
        own = part[part["test_age_group"] == group]
        other = part[part["test_age_group"] != group]
        if own.empty or other.empty:  # no statement without both sides
            continue
        rows.append({"train_age_group": group, "own_group_accuracy": float(own["accuracy"].iat[0]),
                     "other_group_accuracy": float(np.average(other["accuracy"], weights=other["n"]))})
    return pd.DataFrame(rows, columns=["train_age_group", "own_group_accuracy", "other_group_accuracy"])


def metrics_dict(cross_age: pd.DataFrame, cross_dataset: pd.DataFrame, heads: pd.DataFrame) -> dict:
    """The hierarchical metrics file DVC reads (``dvc metrics show``/``dvc exp show``)."""
    return {
        "cross_age": {f"{r.train_age_group}_on_{r.test_age_group}": _score_entry(r) for _, r in cross_age.iterrows()},
        "cross_dataset": {f"{r.train_dataset}_on_{r.test_dataset}": _score_entry(r)
                          for _, r in cross_dataset.iterrows()},
        "headline": {r.train_age_group: {"own_group_accuracy": round(r.own_group_accuracy, 4),
                                         "other_group_accuracy": round(r.other_group_accuracy, 4)}
                     for r in heads.itertuples()},
    }


def with_ci(table: pd.DataFrame, score: str, digits: int, sep: str) -> list[str]:
    """``score`` of each row as text with its confidence interval, e.g. ``0.833 [0.729, 0.917]``."""
    return [f"{v:.{digits}f}{sep}[{lo:.{digits}f}, {hi:.{digits}f}]"
            for v, lo, hi in zip(table[score], table[f"{score}_ci_low"], table[f"{score}_ci_high"])]


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table (no extra dependency)."""
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


def report_markdown(cross_age: pd.DataFrame, heads: pd.DataFrame, infos: list[dict], level: float) -> str:
    """results/report.md: the cross-age table and the study's headline statements, computed."""
    pct = f"{level:.0%}"
    table = cross_age.assign(accuracy_ci=with_ci(cross_age, "accuracy", 3, " "),
                             macro_f1_ci=with_ci(cross_age, "macro_f1", 3, " "))[
        ["train_age_group", "test_age_group", "n", "accuracy_ci", "macro_f1_ci", "degenerate_models"]]
    lines = ["# Cross-age generalisation report", "",
             f"Models: {', '.join(sorted({model_spec(i['model']).display_name + ' ' + i['head'] for i in infos}))}.",
             f"Accuracy and macro-F1 with {pct} bootstrap confidence intervals, pooled over the datasets "
             "of each age group.", "", markdown_table(table), "", "## Headline", ""]
    for r in heads.itertuples():
        verb = "higher" if r.own_group_accuracy > r.other_group_accuracy else "not higher"
        lines.append(f"- Models trained on **{r.train_age_group}** images reach {r.own_group_accuracy:.1%} on "
                     f"{r.train_age_group} test images and {r.other_group_accuracy:.1%} on other age groups "
                     f"(own group {verb}).")
    flagged = [i for i in infos if i.get("degenerate")]
    if flagged:
        lines += ["", "## Flagged models", ""]
        lines += [f"- {model_spec(i['model']).display_name} {i['head']} trained on {i['dataset']}: "
                  f"degenerate ({i['degenerate']}); its rows are flagged in the CSVs." for i in flagged]
    return "\n".join(lines) + "\n"


def write_figures(predictions: pd.DataFrame, cross_age: pd.DataFrame, cross_dataset: pd.DataFrame,
                  tests: dict, config: Config, figures: Path) -> None:
    """Cross-age and cross-dataset heatmaps, confusion-matrix grid, misclassified gallery."""
    from fer_age.plots import plot_confusion_grid, plot_gallery, plot_heatmap

    figures.mkdir(parents=True, exist_ok=True)
    for table, rows, cols, name in ((cross_age, "train_age_group", "test_age_group", "cross_age_accuracy"),
                                    (cross_dataset, "train_dataset", "test_dataset", "cross_dataset_accuracy")):
        order = {"index": table[rows].unique(), "columns": table[cols].unique()}  # the table's, not alphabetical
        matrix = table.pivot(index=rows, columns=cols, values="accuracy").reindex(**order)
        notes = table.assign(text=with_ci(table, "accuracy", 2, "\n")).pivot(
            index=rows, columns=cols, values="text").reindex(**order)
        plot_heatmap(matrix, f"accuracy ({config.evaluate.confidence_level:.0%} CI)", figures / f"{name}.png", notes)
    matrices = {f"{tr} on {te}": confusion_matrix(g["true"], g["predicted"], labels=range(len(config.labels)))
                for (tr, te), g in predictions.groupby(["train_dataset", "test_dataset"], sort=False)}
    plot_confusion_grid(matrices, config.labels, figures / "confusion_matrices.png")
    wrong = predictions[predictions["true"] != predictions["predicted"]].head(config.evaluate.gallery_size)
    images, captions = [], []
    for row in wrong.itertuples():
        test_images, _, sources = tests[row.test_dataset]
        images.append(np.asarray(test_images[sources.index(row.source)]))
        captions.append(f"{row.train_dataset}->{row.test_dataset}\n{row.true_label} -> {row.predicted_label}")
    plot_gallery(images, captions, figures / "misclassified.png")


def run_evaluate(config: Config, splits_dir: Path, models_dir: Path, results_dir: Path) -> dict:
    """The evaluate stage: predictions, complet_result.csv, cross-age CSVs, metrics, figures, report."""
    import mlflow

    from fer_age.tracking import run_tags, setup_experiment

    infos = load_training_infos(config, models_dir)
    experiment_id = setup_experiment(config.train.experiment)
    predictions, tests = predict_all(config, infos, splits_dir)
    complet = classification_rows(predictions, config.labels)
    cross_age = cross_age_table(predictions, config)
    cross_dataset = cross_dataset_table(predictions, config)
    heads = headline(cross_age)
    metrics = metrics_dict(cross_age, cross_dataset, heads)
    results_dir.mkdir(parents=True, exist_ok=True)
    outputs = {"predictions.csv": predictions, "complet_result.csv": complet,
               "cross_age_accuracy.csv": cross_age, "cross_dataset_accuracy.csv": cross_dataset}
    for filename, frame in outputs.items():
        frame.to_csv(results_dir / filename, index=False, float_format="%.6g")
    (results_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    report = report_markdown(cross_age, heads, infos, config.evaluate.confidence_level)
    (results_dir / "report.md").write_text(report)
    write_figures(predictions, cross_age, cross_dataset, tests, config, results_dir / "figures")
    tags = run_tags(stage="evaluate", model=config.model, head=config.head,
                    training_run_ids=",".join(i["run_id"] for i in infos),
                    degenerate_models=",".join(i["dataset"] for i in infos if i.get("degenerate")) or "none")
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"evaluate_{config.model}_{config.head}", tags=tags):
        mlflow.log_params({"model": config.model, "head": config.head, "datasets": ",".join(config.datasets),
                           "bootstrap_samples": config.evaluate.bootstrap_samples, "seed": config.seed})
        for r in cross_age.itertuples():
            mlflow.log_metric(f"acc_{r.train_age_group}_on_{r.test_age_group}", r.accuracy)
            mlflow.log_metric(f"macro_f1_{r.train_age_group}_on_{r.test_age_group}", r.macro_f1)
        mlflow.log_artifacts(str(results_dir / "figures"), "figures")
        for filename in [*outputs, "metrics.json", "report.md"]:
            mlflow.log_artifact(str(results_dir / filename), "results")
    print(report)
    return metrics
