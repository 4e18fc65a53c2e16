"""The tracked training run shared by the train and pool stages: inputs checked, the store reached, the model
fitted, saved, described and registered in MLflow."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_age.config import Config
from fer_age.contracts import HISTORY_FIGURE, TrainingInfo, fresh_dir, read_manifest
from fer_age.modeling.fitting import FitResult, fit
from fer_age.modeling.hyperparameters import Hyperparameters
from fer_age.modeling.objectives import age_group_label
from fer_age.modeling.selection import degenerate_reason
from fer_age.registry import model_filename


def train_and_track(
    config: Config,
    name: str,
    seed: int,
    split_dirs: list[Path],
    models_base: Path,
    history_dir: Path,
    stage: str,
    pooled: bool = False,
) -> TrainingInfo:
    """Validate inputs, reach the store and start the run, then clear ``models_base/name`` and train into it
    with training seed ``seed``; ``pooled``: a mixed-age model, trained and selected as ``pool`` says.

    The per-epoch history goes to ``history_dir/<name>.csv``.
    """
    import mlflow

    from fer_age.modeling.inputs import load_splits
    from fer_age.results.plots import plot_history
    from fer_age.tracking.models import describe_version, log_model, log_split_inputs, serving_config
    from fer_age.tracking.runs import connect, file_digest, run_tags, tracked_run

    hp = Hyperparameters.resolve(config, seed, pooled)
    spec = hp.spec
    manifests = [read_manifest(d) for d in split_dirs]  # inputs first: a missing split fails before any work
    for split in ("train", "valid"):
        load_splits(split_dirs, split)
    age_group = name if len(split_dirs) > 1 else age_group_label(manifests, config.age_groups)
    datasets = [d.name for d in split_dirs]
    experiment_id = connect(config.tracking.experiment)
    tags = run_tags(
        stage=stage,
        name=name,
        dataset=",".join(datasets),
        age_group=age_group,
        model=hp.model,
        head=hp.head,
        seed=str(seed),
    )
    with tracked_run(experiment_id, f"{name} · {spec.display_name} {hp.head} · seed {seed}", tags):
        out_dir = fresh_dir(models_base, name)
        mlflow.log_params({**hp.params(), "datasets": ",".join(datasets), "age_group": age_group})
        result = fit(hp, list(config.labels), split_dirs, list(config.age_groups))
        mlflow.log_params({"n_train": result.n_train, "n_valid": result.n_valid})
        model_path = out_dir / model_filename(hp.model, hp.head, name)
        result.model.save(model_path)
        history_dir.mkdir(parents=True, exist_ok=True)
        result.history.to_csv(history_dir / f"{name}.csv", index=False)
        figure = out_dir / HISTORY_FIGURE
        plot_history(result.history, f"{spec.display_name} {hp.head} on {name}", figure, result.best_epoch, hp.monitor)
        reason = degenerate_reason(result.y_valid, result.y_pred, config.labels)
        if reason:
            print(
                f"WARNING: the {spec.display_name} model trained on {name} is degenerate: {reason}. "
                "Its evaluation rows will be flagged."
            )
        info = TrainingInfo(
            name,
            datasets,
            age_group,
            hp.model,
            hp.head,
            model_path.name,
            hp.preprocessing,
            hp.img_size,
            list(config.labels),
            len(result.history),
            result.best_epoch,
            reason,
            {k: round(v, 6) for k, v in result.best_metrics.items()},
            seed,
        )
        info.save(out_dir)
        best_metrics = {f"best_{k}": v for k, v in result.best_metrics.items()}
        mlflow.log_metrics({"best_epoch": result.best_epoch, "interpolation_alpha": result.alpha, **best_metrics})
        if result.soup_epochs:
            mlflow.set_tags(
                {
                    "soup_epochs": _listed(result.soup_epochs, ","),
                    "soup_seeds": _listed(result.soup_seeds, ","),
                    **({"soup_alphas": _listed(result.soup_alphas, ",")} if result.soup_alphas else {}),
                }
            )
        mlflow.log_artifact(str(figure), "figures")
        log_split_inputs(split_dirs, {"train": "training", "valid": "validation"})
        version = log_model(
            model_path,
            model_path.stem,
            serving_config(info, config.crop.grayscale, config.crop.min_face),
            np.asarray(load_splits(split_dirs, "valid")[0][:2]),
        )
        score, kept = result.best_metrics[hp.monitor], kept_model(result, hp.soup)
        summary = (
            f"{spec.display_name} {hp.head} ({hp.weights} weights) trained on {', '.join(datasets)} ({age_group}), "
            f"seed {seed}; kept {kept}; {hp.monitor} {score:.3f}" + (f"; degenerate: {reason}" if reason else "") + "."
        )
        champion = describe_version(model_path.stem, version, summary, score, bool(reason), seed)
        mlflow.set_tags(
            {
                "degenerate": reason or "false",
                "kept_start": str(result.kept_start).lower(),
                "model_sha256": file_digest(model_path),
                "registered_model": f"{model_path.stem} version {version}" + (" (champion)" if champion else ""),
            }
        )
    best = result.best_metrics
    print(
        f"train {name}: {len(result.history)} epochs, kept {kept} (val accuracy "
        f"{best['val_accuracy']:.3f}, macro-F1 {best['val_macro_f1']:.3f}); registered {model_path.stem} "
        f"version {version}"
    )
    return info


def kept_model(result: FitResult, soup: int) -> str:
    """What a fit kept, in words: its epoch, or its soup or ensemble of ``soup`` runs, the blend with the start, or
    the start."""
    if result.kept_start:
        combined = (" or ensemble" if result.ensemble else " or soup") if soup > 1 else ""
        return f"the starting model itself (no training step{combined} beat it on validation)"
    kept = f"epoch {result.best_epoch}"
    if result.soup_epochs:
        seeds, epochs = _listed(result.soup_seeds, ", "), _listed(result.soup_epochs, ", ")
        combined = f"an ensemble of {soup}" if result.ensemble else f"a soup of {len(result.soup_seeds)} of {soup}"
        blended = min(result.soup_alphas, default=1.0) < 1  # an ensemble run kept a blend or the start (0)
        blends = f"; kept {_listed(result.soup_alphas, ', ')} of the way from the start" if blended else ""
        kept = f"{combined} runs (seeds {seeds}; the runs' epochs {epochs}{blends})"
    return kept + (f", interpolated {result.alpha:g} of the way from the start" if result.alpha < 1 else "")


def _listed(values: list[int] | list[float], separator: str) -> str:
    """Seeds and epochs as they are; blends as short decimals (0.5, 1)."""
    return separator.join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)
