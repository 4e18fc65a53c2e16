"""Using a trained model on photos: one row per face, ``fer_age.analyze`` from anywhere, the MLflow model's
input checks and ``fer-age serve`` over real HTTP. The photo is a real one that ships with matplotlib."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import LABELS, REPO, tiny_params

from fer_age.config import CropConfig
from fer_age.contracts import TrainingInfo

PHOTO = Path(__import__("matplotlib").get_data_path()) / "sample_data" / "grace_hopper.jpg"  # one face, 512 x 600
HAAR = replace(CropConfig(), detectors=["haar"])


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """An untrained compact CNN saved as the train stage saves one (.h5 and training.json)."""
    from fer_age.modeling.models import build_model
    from fer_age.registry import model_spec

    folder = tmp_path_factory.mktemp("model")
    model = build_model(model_spec("compactcnn"), "m2", 32, LABELS, "none")
    path = folder / "CompactCNN_m2_T.h5"
    model.save(path)
    TrainingInfo("T", ["T"], "adult", "compactcnn", "m2", path.name, "rescale", 32, LABELS, 1, 0).save(folder)
    return path


@pytest.fixture(scope="module")
def two_faces(tmp_path_factory) -> Path:
    """The photo twice, side by side: two faces in one image."""
    photo = cv2.imread(str(PHOTO))
    path = tmp_path_factory.mktemp("photos") / "two.jpg"
    cv2.imwrite(str(path), np.hstack([photo, photo]))
    return path


def test_every_face_of_an_image_gets_its_row_with_box_and_top_k(model_file, two_faces, tmp_path):
    from fer_age.modeling.face_model import FaceModel
    from fer_age.modeling.prediction import predict_files

    (tmp_path / "notes.txt").write_text("x")
    files = [two_faces, PHOTO, tmp_path / "notes.txt", tmp_path / "absent.jpg"]
    table = predict_files(files, FaceModel(str(model_file)), HAAR, top_k=3)
    rows = table[table["file"] == str(two_faces)]
    assert list(rows["face"]) == [0, 1] and set(rows["status"]) == {"cropped"} and set(rows["detector"]) == {"haar"}
    width = cv2.imread(str(PHOTO)).shape[1]
    assert sorted(rows["x"] >= width) == [False, True]  # one face in each half
    assert (rows["x"] % width).max() - (rows["x"] % width).min() <= 8  # the same face, twice (Haar steps)
    assert np.allclose(rows[[f"p_{label}" for label in LABELS]].sum(axis=1), 1, atol=1e-4)
    single = table[table["file"] == str(PHOTO)]
    assert len(single) == 1 and single["face"].tolist() == [0]
    for _, row in rows.iterrows():  # label, label_2, label_3: the three most likely labels, in order
        ranked = sorted(LABELS, key=lambda label: -row[f"p_{label}"])[:3]
        assert [row["label"], row["label_2"], row["label_3"]] == ranked
        assert row["p_label_2"] == row[f"p_{ranked[1]}"]
    statuses = table.set_index(table["file"].map(lambda f: Path(f).name))["status"]
    assert statuses["notes.txt"] == "not_an_image" and statuses["absent.jpg"] == "missing"
    assert table.loc[table["status"] == "missing", "face"].isna().all()


def test_the_plain_haar_finds_real_faces_the_original_confirmation_pass_may_reject(two_faces):
    from fer_age.faces.detection import HaarDetector
    from fer_age.faces.images import load_image

    image = load_image(two_faces)
    plain, confirmed = (HaarDetector(None, confirm).detect([image])[0] for confirm in (False, True))
    assert len(plain) == 2 and len(confirmed) <= len(plain)


def _project(root: Path) -> Path:
    """A project folder (params.yaml, dvc.yaml) whose MLflow store holds the model as version 1, @champion."""
    root.mkdir()
    params = tiny_params()
    params["crop"]["detectors"] = ["haar"]
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    (root / "dvc.yaml").write_text("stages: {}\n")
    return root


def test_analyze_finds_the_project_store_from_any_folder_and_never_creates_one(
    model_file, tmp_path, monkeypatch, caplog
):
    import mlflow
    from mlflow import MlflowClient

    import fer_age
    from fer_age.tracking.models import log_model, serving_config
    from fer_age.tracking.runs import TrackingStoreError

    project = _project(tmp_path / "project")
    uri = f"sqlite:///{project / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    info = TrainingInfo.load(model_file.parent)
    with mlflow.start_run():
        mlflow.log_params({"preprocessing": "backbone", "img_size": 32})  # as a backbone's training run does
        log_model(model_file, "Faces", serving_config(info, True, 24), np.zeros((1, 32, 32, 3), np.uint8))
    assert "Failed to log model config" not in caplog.text  # its config logs as params without a collision
    MlflowClient(uri).set_registered_model_alias("Faces", "champion", "1")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # forget the store (MLflow set it): analyze must find it itself

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(TrackingStoreError, match="MLFLOW_TRACKING_URI"):
        fer_age.analyze(str(PHOTO), "models:/Faces/1")
    assert not list(elsewhere.iterdir())  # no store created by looking

    (project / "notebooks").mkdir()
    monkeypatch.chdir(project / "notebooks")  # inside the project, not at its root
    faces = fer_age.analyze(str(PHOTO), "models:/Faces@champion")
    assert len(faces) == 1 and faces[0]["status"] == "cropped" and faces[0]["detector"] == "haar"
    assert faces[0]["label"] in LABELS and abs(sum(faces[0]["emotions"].values()) - 1) < 1e-4
    x, y, w, h = faces[0]["box"]
    assert 0 <= x < x + w <= 512 and 0 <= y < y + h <= 600
    assert not (project / "notebooks" / "mlflow.db").exists()

    monkeypatch.chdir(elsewhere)
    from_project = fer_age.analyze(PHOTO.read_bytes(), "models:/Faces/1", project=project)
    array = fer_age.analyze(cv2.cvtColor(cv2.imread(str(PHOTO)), cv2.COLOR_BGR2RGB), "models:/Faces/1", project=project)
    assert from_project == array and from_project[0]["box"] == faces[0]["box"]
    assert from_project[0]["emotions"] == faces[0]["emotions"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # the documented way, from anywhere (default face settings)
    default = fer_age.analyze(str(PHOTO), "models:/Faces@champion")
    assert len(default) == 1 and default[0]["detector"] == "mtcnn" and default[0]["label"] in LABELS
    assert not list(elsewhere.iterdir())


def test_the_mlflow_model_refuses_inputs_that_cannot_be_faces(model_file):
    from types import SimpleNamespace

    from mlflow.exceptions import MlflowException

    from fer_age.modeling.serving import FaceEmotionModel
    from fer_age.tracking.models import serving_config

    model = FaceEmotionModel()
    config = serving_config(TrainingInfo.load(model_file.parent), True, 24)
    model.load_context(SimpleNamespace(artifacts={"keras_model": str(model_file)}, model_config=config))
    assert len(model.predict(None, np.zeros((2, 24, 40, 3), np.uint8))) == 2
    with pytest.raises(MlflowException, match=r"shape \(1, 1, 3\).*at least 24 pixels") as err:
        model.predict(None, np.zeros((1, 1, 1, 3), np.uint8))
    assert len(str(err.value)) < 400  # says what is wrong, never the whole array
    assert "preprocessing" not in config  # a key of its own: never collides with the run's 'preprocessing' param


LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy (urlopen's may be stale)


def _post(url: str, body: bytes, content_type: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with LOCAL.open(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_serve_answers_a_real_photo_over_http(model_file, two_faces, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({**tiny_params(), "crop": {**tiny_params()["crop"], "detectors": ["haar"]}}))
    command = [sys.executable, "-m", "fer_age.cli", "--params", str(params), "serve", "--model", str(model_file)]
    server = subprocess.Popen(
        [*command, "--port", "0", "--host", "127.0.0.1", "--top-k", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    try:
        deadline, line = time.monotonic() + 120, ""
        while "serving" not in line and time.monotonic() < deadline and server.poll() is None:
            line = server.stdout.readline()  # type: ignore[union-attr]
        address = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert address, f"the service did not start: {line!r}"
        url = address.group(0)
        with LOCAL.open(f"{url}/health", timeout=30) as answer:
            assert json.loads(answer.read())["labels"] == LABELS
        status, answer = _post(f"{url}/analyze", two_faces.read_bytes(), "image/jpeg")
        assert status == 200 and len(answer["faces"]) == 2
        assert {"box", "confidence", "detector", "label", "emotions", "status"} <= set(answer["faces"][0])
        as_json = json.dumps({"image": base64.b64encode(two_faces.read_bytes()).decode()}).encode()
        assert _post(f"{url}/analyze", as_json, "application/json") == (200, answer)
        status, refused = _post(f"{url}/analyze", b'{"picture": 1}', "application/json")
        assert status == 400 and "base64" in refused["error"]
        status, unreadable = _post(f"{url}/analyze", b"not an image", "image/jpeg")
        assert status == 200 and unreadable["faces"][0]["status"] == "unreadable"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_predict_cli_writes_one_row_per_face(model_file, two_faces, tmp_path, capsys):
    from fer_age.cli import main

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({**tiny_params(), "crop": {**tiny_params()["crop"], "detectors": ["haar"]}}))
    out = tmp_path / "p.csv"
    argv = ["--params", str(params), "predict", str(two_faces), "--model", str(model_file), "--out", str(out)]
    assert main([*argv, "--top-k", "9"]) == 1 and "--top-k 9" in capsys.readouterr().err and not out.exists()
    assert main(argv) == 0
    table = pd.read_csv(out)
    assert len(table) == 2 and "2 faces" in capsys.readouterr().out and "label_2" not in table
