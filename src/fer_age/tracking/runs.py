"""MLflow set-up: one store per project (also from queued DVC experiments), safe runs, no leaked secrets."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from fer_age.errors import FerAgeError, redact
from fer_age.tracking.copies import adopt_copied_store, warn_if_artifacts_elsewhere

EXPS_TMP = os.path.join(".dvc", "tmp", "exps")


class TrackingStoreError(FerAgeError, ConnectionError):
    """The MLflow tracking store cannot be reached, read or written."""


def project_root() -> Path:
    """The user's repository root, also from inside a queued experiment's temporary copy.

    ``dvc exp run --queue`` runs stages in ``<repo>/.dvc/tmp/exps/<tmp>/``; a store relative
    to that copy would vanish with it, so the path is mapped back to ``<repo>``.
    """
    root = str(Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve())
    marker = os.sep + EXPS_TMP + os.sep
    return Path(root.split(marker)[0]) if marker in root else Path(root)


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else a SQLite store ``mlflow.db`` at the project root.

    Credentials written into an http(s) URI move to ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``, so
    that no message, log line or run URL carries them.
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / 'mlflow.db'}"
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https") and parts.username:
        os.environ.setdefault("MLFLOW_TRACKING_USERNAME", unquote(parts.username))
        os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", unquote(parts.password or ""))
        netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        uri = urlunsplit(parts._replace(netloc=netloc))
    return uri


REFUSED = re.compile(r"\b(401|403)\b|unauthori[sz]ed|unauthenticated|forbidden|permission[ _]denied", re.IGNORECASE)


def _store_error(uri: str, action: str, err: Exception) -> TrackingStoreError:
    cause = redact(f"{type(err).__name__}: {err}").splitlines()
    if uri.startswith("http") and REFUSED.search(str(err)):
        action = "be used: it refused the credentials"
        hint = (
            "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) to an "
            "account of that server"
        )
    elif uri.startswith("http"):
        hint = "start the server or fix MLFLOW_TRACKING_URI"
    else:
        hint = "check that the file is an MLflow SQLite store you may write, or move it away"
    return TrackingStoreError(
        f"MLflow tracking store {redact(uri)} cannot {action} "
        f"({cause[0][:200] if cause else type(err).__name__}); {hint}"
    )


def find_project(start: Path) -> Path | None:
    """The project holding ``start``: the nearest folder at or above it with a ``dvc.yaml`` and a ``params.yaml``."""
    for folder in (start.resolve(), *start.resolve().parents):
        if (folder / "dvc.yaml").is_file() and (folder / "params.yaml").is_file():
            return folder
    return None


def model_store(project: Path | None = None) -> str:
    """The store to load registered models from, never created by looking: the ``mlflow.db`` of ``project``
    when given, else ``MLFLOW_TRACKING_URI`` when set (MLflow also sets it once a store is used in the process),
    else the ``mlflow.db`` of the project holding the working directory."""
    if project is None and os.environ.get("MLFLOW_TRACKING_URI"):
        return tracking_uri()
    root = project or find_project(Path.cwd())
    store = root / "mlflow.db" if root else None
    if store is None or not store.is_file():
        where = f"{store} does not exist" if store else f"{Path.cwd()} is not inside a fer-age project"
        raise TrackingStoreError(
            f"no MLflow store to load models from: {where}. Run from the project folder, pass its folder "
            "(fer_age.analyze(..., project=...)), or set MLFLOW_TRACKING_URI (e.g. sqlite:////path/to/project/mlflow.db)"
        )
    return f"sqlite:///{store}"


def use_store(uri: str | None = None) -> str:
    """Point MLflow at ``uri`` (default: the project's store), quietly (no run URLs or progress bars);
    returns the URI."""
    import mlflow

    uri = uri or tracking_uri()
    if uri.startswith("http"):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # store errors surface as one TrackingStoreError naming the store, not as MLflow's logged tracebacks
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    mlflow.set_tracking_uri(uri)
    return uri


EXPERIMENT_KIND = "mlflow.experimentKind"  # MLflow 3's UI opens an experiment of no kind on its GenAI overview
MODEL_DEVELOPMENT = "custom_model_development"


def connect(experiment: str) -> str:
    """Point MLflow at the store, check that it answers, and return the experiment's id."""
    from mlflow import MlflowClient

    own_store = not os.environ.get("MLFLOW_TRACKING_URI")  # before use_store: MLflow then sets it
    uri = use_store()
    try:
        root = project_root()
        if own_store and (root / "mlflow.db").is_file():
            for line in adopt_copied_store(root / "mlflow.db", root):
                print(f"note: {line}", file=sys.stderr)
        client = MlflowClient(uri)
        found = client.get_experiment_by_name(experiment)
        if found is None:
            artifacts = None if uri.startswith("http") else (root / "mlartifacts").as_uri()
            experiment_id = client.create_experiment(experiment, artifact_location=artifacts)
        else:
            experiment_id = found.experiment_id
            fail_stale_runs(experiment_id)
            if own_store:
                warn_if_artifacts_elsewhere(experiment, found.artifact_location, root)
        if found is None or found.tags.get(EXPERIMENT_KIND) != MODEL_DEVELOPMENT:  # the UI opens on the runs
            client.set_experiment_tag(experiment_id, EXPERIMENT_KIND, MODEL_DEVELOPMENT)
        return experiment_id
    except Exception as err:  # sqlite, sqlalchemy, requests and MLflow errors alike
        raise _store_error(uri, "be reached", err) from None


def run_tags(**tags: str) -> dict[str, str]:
    """Common tags: git commit, the pipeline execution, host and process, the DVC experiment name."""
    tags = {k: str(v) for k, v in tags.items()}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        tags["mlflow.source.git.commit"] = commit.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    tags["pipeline"] = pipeline_id(tags.get("mlflow.source.git.commit", ""))
    tags["host"], tags["pid"] = socket.gethostname(), str(os.getpid())
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_exp_name"] = os.environ["DVC_EXP_NAME"]
    return tags


def pipeline_id(commit: str) -> str:
    """What groups the runs of one pipeline execution: the DVC experiment's name, else the commit and params."""
    if os.environ.get("DVC_EXP_NAME"):
        return os.environ["DVC_EXP_NAME"]
    params = Path("params.yaml")
    digest = hashlib.sha256(commit.encode() + (params.read_bytes() if params.is_file() else b""))
    return f"repro-{digest.hexdigest()[:10]}"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_stale_runs(experiment_id: str) -> int:
    """Mark FAILED the runs left RUNNING by a process of this host that is gone (a kill -9, a power cut)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri())
    stale = [
        r
        for r in client.search_runs([experiment_id], "attributes.status = 'RUNNING'")
        if r.data.tags.get("host") == socket.gethostname()
        and r.data.tags.get("pid", "").isdigit()
        and not _process_alive(int(r.data.tags["pid"]))
    ]
    for run in stale:
        client.set_tag(run.info.run_id, "failure", "its process was killed; marked FAILED by a later stage")
        client.set_terminated(run.info.run_id, "FAILED")
        print(
            f"note: MLflow run {run.info.run_id} ({run.info.run_name}) was left RUNNING by a killed process; "
            "marked FAILED"
        )
    return len(stale)


def file_digest(path: Path) -> str:
    """SHA-256 of a file: the link between a model file (a DVC output) and the MLflow run that made it."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def find_training_run(experiment_id: str, name: str, digest: str):
    """The newest finished run that trained model ``name`` into the file with this digest, or None."""
    from mlflow import MlflowClient

    runs = MlflowClient(tracking_uri()).search_runs(
        [experiment_id],
        f"tags.name = '{name}' and tags.model_sha256 = '{digest}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


def guard_run(run_id: str) -> None:
    """Start a small watcher process: when this process dies while the run is RUNNING (a kill -9 that no
    handler can catch), the watcher marks the run FAILED. It runs in its own session, so the signals that
    stop a pipeline do not stop it."""
    subprocess.Popen(
        [sys.executable, "-m", "fer_age.tracking.runs", run_id, str(os.getpid())],
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri()},
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _watch(run_id: str, pid: int) -> None:
    while _process_alive(pid):
        time.sleep(0.5)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri())
    if client.get_run(run_id).info.status == "RUNNING":
        client.set_tag(run_id, "failure", "its process was killed; marked FAILED by its watcher")
        client.set_terminated(run_id, "FAILED")


class Interrupted(KeyboardInterrupt):
    """SIGTERM, turned into an exception so that the run is closed as KILLED."""


@contextlib.contextmanager
def tracked_run(experiment_id: str, run_name: str, tags: dict[str, str]) -> Iterator:
    """An MLflow run that ends FINISHED, FAILED (an error) or KILLED (SIGINT/SIGTERM), never left RUNNING."""
    import mlflow

    try:
        run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags)
    except Exception as err:
        raise _store_error(tracking_uri(), "start a run", err) from None
    guard_run(run.info.run_id)

    def interrupt(signum, frame):
        raise Interrupted(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield run
    except KeyboardInterrupt:
        mlflow.end_run("KILLED")
        raise
    except BaseException:
        mlflow.end_run("FAILED")
        raise
    else:
        mlflow.end_run("FINISHED")
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def soup_run(seed: int, size: int) -> Iterator:
    """A nested MLflow run for one run of a model soup (``size`` > 1), holding its epochs; nothing without a soup."""
    import mlflow

    if size == 1:
        yield None
        return
    with mlflow.start_run(run_name=f"soup run · seed {seed}", nested=True, tags={"soup_seed": str(seed)}) as run:
        yield run


if __name__ == "__main__":  # the watcher started by guard_run
    _watch(sys.argv[1], int(sys.argv[2]))
