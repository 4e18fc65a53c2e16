"""Hardening: nothing written outside the project, no injection, no leaked secrets, faults leave no debris."""

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import make_project, run, stale_stages, tiny_params
from mlflow import MlflowClient

from fer_age.cli import main
from fer_age.config import ConfigError
from fer_age.contracts import fresh_dir

BAD_NAMES = ["../../../outside/dir", "/tmp/victim", "X;touch INJECTED;echo", "a/b", "..", "crop@../../x"]


@pytest.fixture
def sentinel_project(tmp_path, monkeypatch):
    """An empty project folder (valid params) and a sentinel folder beside it that must survive."""
    outside = tmp_path / "outside" / "dir"
    outside.mkdir(parents=True)
    (outside / "sentinel").write_text("keep")
    project = tmp_path / "a" / "b" / "project"
    project.mkdir(parents=True)
    (project / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    monkeypatch.chdir(project)
    return project, outside


@pytest.mark.parametrize("stage", ["sample", "crop", "split", "train"])
@pytest.mark.parametrize("name", BAD_NAMES)
def test_unsafe_names_are_refused_before_any_file_changes(sentinel_project, stage, name, capsys):
    project, outside = sentinel_project
    assert main([stage, name]) == 1
    assert (outside / "sentinel").read_text() == "keep"
    assert sorted(p.name for p in project.iterdir()) == ["params.yaml"]
    err = capsys.readouterr().err
    assert "not allowed" in err or "is not a" in err


def test_stage_outputs_are_resolved_and_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "keep").write_text("x")
    (tmp_path / "data" / "cropped").mkdir(parents=True)
    os.symlink(tmp_path / "elsewhere", tmp_path / "data" / "cropped" / "LINKED")
    with pytest.raises(Exception, match="symbolic link|outside"):
        fresh_dir(Path("data/cropped"), "LINKED")
    assert (tmp_path / "elsewhere" / "keep").is_file()
    with pytest.raises(ConfigError):
        fresh_dir(Path("data/cropped"), "../elsewhere")
    assert fresh_dir(Path("data/cropped"), "OK").is_dir()


@pytest.mark.parametrize(
    "key",
    [
        "X;touch INJECTED;echo",
        pytest.param("X';touch INJECTED;echo '", marks=pytest.mark.e2e),  # each a real dvc repro: with the e2e tests
        pytest.param("X$(touch INJECTED)", marks=pytest.mark.e2e),
    ],
)
def test_dvc_yaml_never_hands_a_params_value_to_the_shell(tmp_path, key):
    params = tiny_params()
    params["sample"]["datasets"] = {key: "child"}
    params["datasets"] = {key: {"raw": "R", "age_group": "child"}}
    project = make_project(tmp_path / "project", params)
    result = run(["dvc", "repro"], project, check=False)
    assert result.returncode != 0
    assert not list(tmp_path.rglob("INJECTED")) and not Path("INJECTED").exists()


def _train_output(project):
    folder = project / "models" / "seed-42" / "SAMPLE-CHILD"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_unreachable_store_fails_before_training_naming_it_without_secrets(study_copy, monkeypatch, capsys):
    monkeypatch.chdir(study_copy)
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://alice:s3cr3t@127.0.0.1:9")
    before = _train_output(study_copy)
    assert main(["train", "SAMPLE-CHILD"]) == 1
    captured = capsys.readouterr()
    assert "s3cr3t" not in captured.out + captured.err and "alice" not in captured.out + captured.err
    assert "http://127.0.0.1:9" in captured.err and "cannot be reached" in captured.err
    assert "Traceback" not in captured.err
    assert _train_output(study_copy) == before  # nothing emptied


@pytest.mark.parametrize("damage", ["corrupt", "read-only", "locked"])
def test_broken_store_is_one_clear_message_and_outputs_survive(study_copy, monkeypatch, capsys, damage):
    monkeypatch.chdir(study_copy)
    db = study_copy / "mlflow.db"
    uri = f"sqlite:///{db}"
    lock = None
    if damage == "corrupt":
        db.write_bytes(b"this is not a database" * 100)
    elif damage == "read-only":
        uri = f"sqlite:///file:{db}?mode=ro&uri=true"
    else:
        lock = sqlite3.connect(db, timeout=0)
        lock.execute("BEGIN EXCLUSIVE")
        monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_POOLCLASS", "NullPool")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    before = _train_output(study_copy)
    try:
        assert main(["train", "SAMPLE-CHILD"]) == 1
    finally:
        if lock is not None:
            lock.rollback()
            lock.close()
    err = capsys.readouterr().err
    assert "MLflow tracking store sqlite:///" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _train_output(study_copy) == before


def test_a_bug_keeps_its_traceback_and_a_project_error_is_one_line(study_copy, monkeypatch, capsys):
    monkeypatch.chdir(study_copy)
    os.remove(study_copy / "data" / "splits" / "KIDS" / "X_test.npy")
    assert main(["evaluate"]) == 1
    err = capsys.readouterr().err
    assert "X_test.npy is missing" in err and "Traceback" not in err
    info = study_copy / "models" / "seed-43" / "KIDS" / "training.json"
    info.write_text(info.read_text().replace('"model_file"', '"model_fil"'))
    assert main(["evaluate"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_sigkill_during_training_then_repro_gives_identical_outputs_and_no_running_run(study_copy):
    before = _train_output(study_copy)
    client = MlflowClient(f"sqlite:///{study_copy / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("fer-age-generalization").experiment_id
    started = int(time.time() * 1000)
    repro = subprocess.Popen(
        ["dvc", "repro", "-f", "-s", "train@SAMPLE-CHILD-42"],
        cwd=study_copy,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline, killed = time.time() + 120, None
    while time.time() < deadline and killed is None and repro.poll() is None:
        for r in client.search_runs(
            [experiment], "attributes.status = 'RUNNING' and tags.name = 'SAMPLE-CHILD' and tags.seed = '42'"
        ):
            if r.info.start_time >= started and "val_accuracy" in r.data.metrics:  # training: outputs cleared
                os.kill(int(r.data.tags["pid"]), signal.SIGKILL)
                killed = r.info.run_id
        time.sleep(0.2)
    repro.wait(timeout=60)
    assert killed and repro.returncode != 0
    assert not (study_copy / "models" / "seed-42" / "SAMPLE-CHILD" / "training.json").exists()  # killed mid-training
    deadline = time.time() + 60
    while client.get_run(killed).info.status == "RUNNING" and time.time() < deadline:
        time.sleep(0.5)  # the run's watcher notices the dead process
    assert client.get_run(killed).info.status == "FAILED"
    assert "killed" in client.get_run(killed).data.tags["failure"]
    out = run(["dvc", "repro"], study_copy).stdout
    assert "train@SAMPLE-CHILD-42" in out  # retrained, or restored from DVC's run cache
    assert _train_output(study_copy) == before  # byte-identical model, history figure and record
    assert not client.search_runs([experiment], "attributes.status = 'RUNNING'")
    assert stale_stages(study_copy) == {}


def test_team_stack_never_deletes_a_folder_that_is_not_a_stack(tmp_path):
    from stack import StackError, start

    work = tmp_path / "work"
    work.mkdir()
    (work / "thesis.tex").write_text("precious")
    with pytest.raises(StackError, match="thesis.tex"):
        start(work)
    assert (work / "thesis.tex").read_text() == "precious"


def test_a_server_refusing_the_credentials_says_which_variables_to_set(monkeypatch, tmp_path):
    import http.server
    import threading

    from fer_age.tracking.runs import TrackingStoreError, connect

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error_code": "UNAUTHENTICATED", "message": "bad credentials"}')

        do_POST = do_GET

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.chdir(tmp_path)
        with pytest.raises(TrackingStoreError) as err:
            connect("fer-age-generalization")
    finally:
        server.shutdown()
        server.server_close()
    message = str(err.value)
    assert "refused the credentials" in message and "MLFLOW_TRACKING_USERNAME" in message
    assert "start the server" not in message


def test_a_copied_project_logs_into_its_own_artifact_folder(tmp_path, monkeypatch, capsys):
    import shutil

    import mlflow
    from mlflow import MlflowClient

    from fer_age.tracking.runs import connect

    def stage(experiment: str, artifact: str) -> tuple[str, str]:
        """One stage process: the project's own store, one run logging one file; (its run id, stderr)."""
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        experiment_id = connect(experiment)
        (Path.cwd() / artifact).write_text(artifact)
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_artifact(str(Path.cwd() / artifact))
        return run.info.run_id, capsys.readouterr().err

    def files(folder: Path) -> set[str]:
        return {p.name for p in folder.rglob("*.txt")}

    original = tmp_path / "original"
    original.mkdir()
    monkeypatch.chdir(original)
    first, said = stage("study", "first.txt")
    assert "note" not in said and "warning" not in said  # its own store: nothing to say
    for name, with_artifacts in (("copy", True), ("store-only", False)):
        copy = tmp_path / name
        shutil.copytree(original, copy) if with_artifacts else copy.mkdir()
        shutil.copy(original / "mlflow.db", copy / "mlflow.db")
        monkeypatch.chdir(copy)
        new, said = stage("study", f"{name}.txt")
        assert f"now keeps its artifacts in {copy / 'mlartifacts'}" in said and str(original) in said
        assert f"{name}.txt" in files(copy / "mlartifacts") and f"{name}.txt" not in files(original / "mlartifacts")
        client = MlflowClient(f"sqlite:///{copy / 'mlflow.db'}")
        old_location = client.get_run(first).info.artifact_uri
        assert old_location.startswith((copy if with_artifacts else original).as_uri()), old_location
        assert [f.path for f in client.list_artifacts(first)] == ["first.txt"]  # readable either way
        assert "note" not in stage("study", "again.txt")[1]  # re-pointed once
    assert files(original / "mlartifacts") == {"first.txt"}


def test_an_artifact_folder_chosen_by_hand_outside_the_project_is_kept_and_named(tmp_path, monkeypatch, capsys):
    from mlflow import MlflowClient

    from fer_age.tracking.runs import connect

    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    elsewhere = (tmp_path / "shared-artifacts").as_uri()
    MlflowClient(f"sqlite:///{project / 'mlflow.db'}").create_experiment("study", artifact_location=elsewhere)
    connect("study")
    said = capsys.readouterr().err
    assert "warning" in said and str(tmp_path / "shared-artifacts") in said and "tracking.experiment" in said
    assert MlflowClient(f"sqlite:///{project / 'mlflow.db'}").get_experiment_by_name("study").artifact_location == (
        elsewhere
    )
