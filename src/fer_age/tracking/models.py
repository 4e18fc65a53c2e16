"""MLflow Models: each trained network logged as a pyfunc with its signature and registered; the splits it
used logged as dataset inputs."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
import warnings
from pathlib import Path

import numpy as np

from fer_age.contracts import TrainingInfo, array_paths, split_digest


def requirements() -> list[str]:
    """The pinned packages a logged model needs (no inference step, which would import the model offline)."""
    from importlib.metadata import version

    packages = ("tensorflow", "keras", "numpy", "pandas", "opencv-contrib-python-headless", "mlflow")
    return [f"{name}=={version(name)}" for name in packages]


def serving_config(info: TrainingInfo, grayscale: bool, min_face: int) -> dict:
    """The MLflow model's ``model_config``: what its code needs besides the .h5 file. No key repeats a run param
    (MLflow logs the config as params, and a param cannot change within a run)."""
    from fer_age.registry import model_spec, serving_preprocessing

    return {
        "labels": list(info.labels),
        "img_size": info.img_size,
        "grayscale": grayscale,
        "input_scaling": serving_preprocessing(model_spec(info.model), info.preprocessing),
        "min_face": min_face,
    }


def log_model(model_path: Path, registered_name: str, config: dict, example: np.ndarray) -> str:
    """Log the trained network as an MLflow Model at artifact path ``model`` (pyfunc: face crops in, labelled
    probabilities out, with signature and input example; ``config`` its ``model_config``) and register it;
    returns the new version."""
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema, TensorSpec

    from fer_age.modeling import serving

    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, -1, -1, 3))]),
        outputs=Schema([ColSpec("string", "label"), *[ColSpec("double", f"p_{label}") for label in config["labels"]]]),
    )
    logging.getLogger("mlflow.pyfunc").setLevel(logging.WARNING)  # "Validating input example ..."
    chatter = io.StringIO()  # the registry's "Created version N" lines: said once, by the train stage
    with contextlib.redirect_stderr(chatter):
        logged = mlflow.pyfunc.log_model(
            name="model",
            python_model=serving.__file__,
            artifacts={"keras_model": str(model_path)},
            model_config=config,
            signature=signature,
            input_example=example,
            registered_model_name=registered_name,
            pip_requirements=requirements(),
        )
    kept = [line for line in chatter.getvalue().splitlines() if not REGISTRY_CHATTER.match(line)]
    if kept:
        print("\n".join(kept), file=sys.stderr)
    return str(logged.registered_model_version)


CHAMPION = "champion"


def describe_version(
    name: str, version: str, summary: str, validation_score: float, degenerate: bool, seed: int
) -> bool:
    """Give a registered version its description and validation score, and move the ``champion`` alias to it
    when it beats the current champion (a model that learned beats a degenerate one, whatever the score).
    Returns whether it became the champion."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    client.update_model_version(name, version, description=summary)
    for key, value in {"summary": summary, "validation_score": f"{validation_score:.6f}"}.items():
        client.set_model_version_tag(name, version, key, value)
    client.set_model_version_tag(name, version, "degenerate", str(degenerate).lower())
    client.set_model_version_tag(name, version, "seed", str(seed))
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:  # no champion yet
        champion = None
    if champion is not None:
        held = (champion.tags.get("degenerate") != "true", float(champion.tags.get("validation_score", "-inf")))
        if held >= (not degenerate, validation_score):
            return False
    client.set_registered_model_alias(name, CHAMPION, version)
    return True


def add_test_scores(run_id: str, text: str) -> None:
    """Append the latest evaluation's test scores to the description of the version the run registered."""
    from mlflow import MlflowClient

    client = MlflowClient()
    for version in client.search_model_versions(f"run_id = '{run_id}'"):
        summary = version.tags.get("summary", version.description or "")
        client.update_model_version(version.name, version.version, description=f"{summary} Test: {text}.")


def log_split_inputs(split_dirs: list[Path], contexts: dict[str, str], run_id: str | None = None) -> None:
    """Log the splits a run used as MLflow dataset inputs, named ``<DS>/<split>``, digest = their DVC hash."""
    import mlflow
    from mlflow.data.numpy_dataset import from_numpy
    from mlflow.entities import DatasetInput, InputTag

    inputs = []
    for split_dir in split_dirs:
        digest = split_digest(split_dir)
        for split, context in contexts.items():
            x_path, y_path = array_paths(split_dir, split)
            with warnings.catch_warnings():  # a local path "can be interpreted in multiple ways": it is a file
                warnings.filterwarnings("ignore", message="The specified dataset source")
                dataset = from_numpy(
                    np.load(x_path, mmap_mode="r"),
                    targets=np.load(y_path),
                    source=str(x_path.resolve()),
                    name=f"{split_dir.name}/{split}",
                    digest=digest,
                )
            inputs.append(DatasetInput(dataset._to_mlflow_entity(), [InputTag("mlflow.data.context", context)]))
    if run_id is None:
        active = mlflow.active_run()
        if active is None:
            raise RuntimeError("log_split_inputs needs a run id or an active run")
        run_id = active.info.run_id
    mlflow.MlflowClient().log_inputs(run_id, datasets=inputs)


REGISTRY_CHATTER = re.compile(r"^(Successfully registered model|Registered model .* already exists|Created version)")
