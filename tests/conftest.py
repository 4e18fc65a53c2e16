"""Shared fixtures: tiny parameter sets and a temporary copy of the project as a git repo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fer_age.config import STUDY_LABELS

REPO = Path(__file__).resolve().parents[1]
LABELS = list(STUDY_LABELS)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# the commands (dvc, fer-age) of the environment running the tests come first
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"


def tiny_params(**overrides) -> dict:
    """The project's params.yaml shrunk to seconds: two sample datasets, 32 px, 1 epoch."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["img_size"] = 32
    params["datasets"] = {name: params["datasets"][name] for name in ("SAMPLE-CHILD", "SAMPLE-OLDER")}
    params["sample"].update(datasets={"SAMPLE-CHILD": "child", "SAMPLE-OLDER": "older"}, subjects=5,
                            images_per_emotion=1, scene_size=160)
    params["train"].update(epochs=1, batch_size=8)
    params["evaluate"].update(bootstrap_samples=200, gallery_size=4)
    for key, value in overrides.items():
        params[key] = value
    return params


def run(cmd: list[str], cwd: Path, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run a real command, echoing its output when it fails."""
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def project(tmp_path: Path):
    """A fresh git + DVC checkout of this project (code, dvc.yaml, tiny params) in a temp folder."""
    root = tmp_path / "project"
    root.mkdir()
    for item in ("dvc.yaml", "src", ".dvc/config", ".dvc/.gitignore", ".dvc/plots", ".dvcignore", ".gitignore"):
        source = REPO / item
        if source.is_dir():
            shutil.copytree(source, root / item, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif source.exists():
            (root / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, root / item)
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    env = {"MLFLOW_TRACKING_URI": "", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    run(["git", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "init"], root, env)
    yield root
