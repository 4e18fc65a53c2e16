"""Shared fixtures: tiny parameter sets, a temporary copy of the project as a git + DVC repo, and one
demo ``dvc repro`` shared by every test that only reads its outputs."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from fer_age.config import STUDY_LABELS

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))  # stage_deps: the import graph behind dvc.yaml's deps
sys.path.insert(0, str(REPO / "team"))  # stack: the local team stack (PostgreSQL, S3, MLflow server)
LABELS = list(STUDY_LABELS)
PROJECT_FILES = ("dvc.yaml", "src", ".dvc/config", ".dvc/.gitignore", ".dvc/plots", ".dvcignore", ".gitignore")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# the commands (dvc, fer-age) of the environment running the tests come first
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"


def tiny_params(**overrides) -> dict:
    """The project's params.yaml shrunk to seconds: two sample datasets, 32 px, 1 epoch."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["img_size"] = 32
    params["datasets"] = {name: params["datasets"][name] for name in ("SAMPLE-CHILD", "SAMPLE-OLDER")}
    params["sample"].update(
        datasets={"SAMPLE-CHILD": "child", "SAMPLE-OLDER": "older"}, subjects=6, images_per_emotion=1, scene_size=160
    )
    params["crop"]["detectors"] = ["haar"]  # MTCNN has tests of its own; haar needs no TensorFlow
    params["train"].update(epochs=1, batch_size=8)
    params["evaluate"].update(bootstrap_samples=200, gallery_size=4)
    for key, value in overrides.items():
        params[key] = value
    return params


def run(
    cmd: list[str], cwd: Path, env: dict | None = None, check: bool = True, timeout: float | None = None
) -> subprocess.CompletedProcess:
    """Run a real command, echoing its output when it fails."""
    result = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def wait_for_queue(project: Path, env: dict, timeout: float) -> str:
    """Poll ``dvc queue status`` until nothing is queued or running (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = run(["dvc", "queue", "status"], project, env).stdout
        if not any(word in status for word in ("Queued", "Running")):
            return status
        time.sleep(5)
    raise AssertionError(f"the queue did not finish in {timeout} s:\n{status}")


def start_workers(project: Path, env: dict, workers: int) -> None:
    """``dvc queue start -j N`` with its output in a file: the workers it leaves running inherit that output, and
    a pipe would keep this call waiting until the last of them exits (one whose monitor thread died never does)."""
    with (project / ".dvc" / "tmp" / "queue-start.log").open("w") as log:
        subprocess.run(
            ["dvc", "queue", "start", "-j", str(workers)],
            cwd=project,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=120,
        )


def stop_workers(project: Path) -> None:
    """Stop by PID every queue worker of ``project`` still running (DVC leaves ``<worker>.pid`` in its celery
    folder; a PID is signalled only while its process is still that worker), waiting at most 10 s."""
    workers = []
    for pid_file in (project / ".dvc" / "tmp" / "exps" / "celery").glob("*.pid"):
        pid = int(pid_file.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline")
        with contextlib.suppress(OSError):  # gone, or gone since
            if b"queue-worker" in cmdline.read_bytes():
                os.kill(pid, signal.SIGTERM)
                workers.append(pid)
    deadline = time.monotonic() + 10
    while workers and time.monotonic() < deadline:
        workers = [pid for pid in workers if Path(f"/proc/{pid}").exists()]
        time.sleep(0.5)
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def make_project(root: Path, params: dict | None = None) -> Path:
    """A fresh git + DVC checkout of this project (code, dvc.yaml, ``params``) in ``root``."""
    root.mkdir(parents=True)
    for item in PROJECT_FILES:
        source = REPO / item
        if source.is_dir():
            shutil.copytree(source, root / item, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif source.exists():
            (root / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, root / item)
    write_params(root, params or tiny_params())
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    run(["git", "init", "-q"], root)
    commit(root, "init")
    return root


def write_params(root: Path, params: dict) -> None:
    """Write ``params`` and, when they are valid, dvc.yaml's pipeline vars (as ``fer-age pipeline`` does)."""
    from fer_age.config import ConfigError
    from fer_age.dvc_vars import write_pipeline_vars
    from fer_age.loading import config_from_dict

    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with contextlib.suppress(ConfigError):  # invalid params: the stages refuse them, whatever dvc.yaml lists
        write_pipeline_vars(config_from_dict(params), root / "dvc.yaml")


def stale_stages(root: Path) -> dict:
    """``dvc status`` of ``root`` without the inventory stages, which DVC always lists ("always changed": they
    stand in for the raw folders it never hashes)."""
    import json

    status = json.loads(run(["dvc", "status", "--json"], root).stdout)
    return {stage: why for stage, why in status.items() if why != ["always changed"]}


def stages_run(log: str) -> list[str]:
    """The stages a ``dvc repro`` log says it ran, the inventory stages (always run) left out."""
    import re

    return [s for s in re.findall(r"Running stage '([^']+)'", log) if not s.startswith("inventory@")]


def commit(root: Path, message: str) -> None:
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", message, "--allow-empty"], root, GIT_ENV)


def pytest_collection_modifyitems(items):
    """Every test of the shared study (a full ``dvc repro``, minutes) is an ``e2e`` test: the default suite
    stays short, ``pytest -m e2e`` runs them."""
    for item in items:
        if "study" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def isolated_tracking_env(monkeypatch):
    """MLflow writes MLFLOW_TRACKING_URI into the environment when a store is chosen in-process; undo it after
    each test, so that later subprocesses log into their own project's store."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


def study_params() -> dict:
    """Tiny params over four datasets in four layouts (sample folders, CK+, FACES names, a CSV file), two
    training seeds, the pooled model and the FER2013 baseline row."""
    from layouts import layout_params

    params = tiny_params()
    params["datasets"] = {"SAMPLE-CHILD": params["datasets"]["SAMPLE-CHILD"], **layout_params()}
    params["sample"]["datasets"] = {"SAMPLE-CHILD": "child"}
    params["pool"]["models"] = "all"
    params["evaluate"]["baselines"] = ["fer2013"]
    params["seeds"] = [42, 43]
    return params


@pytest.fixture(scope="session")
def study(tmp_path_factory) -> Path:
    """One ``dvc repro`` of ``study_params`` (raw data added with ``dvc add``), shared by the tests that only
    read its outputs; tests that change it work on a copy (``study_copy``)."""
    from layouts import write_all

    root = make_project(tmp_path_factory.mktemp("study") / "project", study_params())
    write_all(root / "data" / "raw")
    run(["dvc", "add", "data/raw/CKP", "data/raw/FACES", "data/raw/KIDS"], root)
    commit(root, "raw data")
    # every stage appends the params keys it read to params_read.jsonl (test_architecture checks them)
    result = run(["dvc", "repro"], root, env={"FER_AGE_RECORD_PARAMS": str(root / "params_read.jsonl")})
    (root / "repro.log").write_text(result.stdout + result.stderr)
    commit(root, "repro")
    return root


@pytest.fixture
def study_copy(study, tmp_path) -> Path:
    """A private copy of the shared study project (git, DVC cache, MLflow store and outputs)."""
    copy = tmp_path / "project"
    shutil.copytree(study, copy, symlinks=True)
    return copy
