"""MLflow set-up: one store per project, reachable from queued DVC experiments too."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

EXPS_TMP = os.path.join(".dvc", "tmp", "exps")


def project_root() -> Path:
    """The user's repository root, also from inside a queued experiment's temporary copy.

    ``dvc exp run --queue`` runs stages in ``<repo>/.dvc/tmp/exps/<tmp>/``; a store relative
    to that copy would vanish with it, so the path is mapped back to ``<repo>``.
    """
    root = str(Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve())
    marker = os.sep + EXPS_TMP + os.sep
    return Path(root.split(marker)[0]) if marker in root else Path(root)


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else a SQLite store ``mlflow.db`` at the project root."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / 'mlflow.db'}"


def setup_experiment(name: str) -> str:
    """Point MLflow at the store, check it answers, and return the experiment id."""
    import mlflow
    from mlflow import MlflowClient

    uri = tracking_uri()
    if uri.startswith("http"):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    try:
        experiment = client.get_experiment_by_name(name)
    except Exception as err:
        raise ConnectionError(f"MLflow tracking store {uri} cannot be reached ({type(err).__name__}: "
                              f"{str(err)[:200]}); start the server or unset MLFLOW_TRACKING_URI") from err
    if experiment is not None:
        return experiment.experiment_id
    artifacts = None if uri.startswith("http") else (project_root() / "mlartifacts").as_uri()
    return client.create_experiment(name, artifact_location=artifacts)


def run_tags(**tags: str) -> dict[str, str]:
    """Common tags: git commit and the DVC experiment name when there is one."""
    tags = {k: str(v) for k, v in tags.items()}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        tags["mlflow.source.git.commit"] = commit.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_exp_name"] = os.environ["DVC_EXP_NAME"]
    return tags
