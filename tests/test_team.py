"""The team stack end to end: PostgreSQL + S3 (moto, authentication on) + an MLflow server, the demo through
``dvc repro`` and a 2-worker ``dvc queue`` sweep logging into it, then ``dvc push``, a fresh clone, ``dvc pull``.

Run alone with ``pytest -m team`` (needs PostgreSQL's server programs: ``apt-get install postgresql``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import commit, make_project, run, start_workers, stop_workers, tiny_params, wait_for_queue
from stack import BUCKET, start, stop

pytestmark = pytest.mark.team
EXPERIMENT = "fer-age-generalization"
SWEEP = {
    "train.learning_rate=0.002": ("learning_rate", "0.002"),
    "train.label_smoothing=0.1": ("label_smoothing", "0.1"),
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("team") / "stack"
    stack = start(root)
    yield stack
    stop(root)


def s3(stack):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=stack.s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=stack.access_key_id,
        aws_secret_access_key=stack.secret_access_key,
    )


def bucket_keys(stack, prefix: str) -> list[str]:
    """The bucket's object keys under ``prefix``, sorted (paginated: a listing returns at most 1,000 keys)."""
    pages = s3(stack).get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def queue_logs(project: Path, env: dict, status: str) -> str:
    """The logs of every failed task in ``status`` (``dvc queue logs``), to say why it failed."""
    failed = [line.split()[0] for line in status.splitlines() if line.rstrip().endswith("Failed")]
    return "".join(run(["dvc", "queue", "logs", task], project, env, check=False).stdout[-3000:] for task in failed)


def test_team_stack_end_to_end(stack, tmp_path, monkeypatch):
    import mlflow
    from mlflow import MlflowClient

    env = stack.client_env()
    for name, value in env.items():  # this process is a client too (MlflowClient, boto3)
        monkeypatch.setenv(name, value)
    origin = tmp_path / "origin.git"
    run(["git", "init", "-q", "--bare", str(origin)], tmp_path)
    project = make_project(tmp_path / "project", tiny_params())
    run(["dvc", "remote", "add", "-d", "team", f"s3://{BUCKET}/dvc"], project)
    run(["dvc", "remote", "modify", "team", "endpointurl", stack.s3_endpoint], project)  # no credentials in it
    run(["git", "remote", "add", "origin", str(origin)], project)
    commit(project, "team remote")
    assert "secret" not in (project / ".dvc" / "config").read_text()

    run(["fer-age", "check-remote"], project, env)
    run(["dvc", "repro"], project, env)
    commit(project, "repro")
    for change in SWEEP:
        run(["dvc", "exp", "run", "--queue", "-S", change], project, env)
    try:
        start_workers(project, env, 2)
        status = wait_for_queue(project, env, 900)
    finally:
        stop_workers(project)
    assert status.count("Success") == len(SWEEP), status + queue_logs(project, env, status)

    # every run is on the server, finished, with params, metrics and artifacts readable through it
    client = MlflowClient(env["MLFLOW_TRACKING_URI"], registry_uri=env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], "tags.stage = 'train'")
    assert len(runs) == 2 * (1 + len(SWEEP)) and {r.info.status for r in runs} == {"FINISHED"}
    by_pipeline: dict[str, list] = {}
    for r in runs:
        by_pipeline.setdefault(r.data.tags["pipeline"], []).append(r)
    assert len(by_pipeline) == 1 + len(SWEEP)
    settings = ("learning_rate", "label_smoothing")
    swept = {tuple(r.data.params[k] for k in settings) for r in runs if "dvc_exp_name" in r.data.tags}
    assert swept == {("0.002", "0.0"), ("0.001", "0.1")}  # each queued experiment logged its own settings, unmixed
    for pipeline_runs in by_pipeline.values():
        assert sorted(r.data.tags["name"] for r in pipeline_runs) == ["SAMPLE-CHILD", "SAMPLE-OLDER"]
        assert len({tuple(r.data.params[k] for k in settings) for r in pipeline_runs}) == 1
    for r in runs:
        assert "best_val_macro_f1" in r.data.metrics
        figures = client.download_artifacts(r.info.run_id, "figures", str(tmp_path / r.info.run_id))
        assert any(p.suffix == ".png" and p.stat().st_size for p in Path(figures).iterdir())
    for name in ("SAMPLE-CHILD", "SAMPLE-OLDER"):
        versions = client.search_model_versions(f"name = 'CompactCNN_m2_{name}'")
        assert {v.run_id for v in versions} == {r.info.run_id for r in runs if r.data.tags["name"] == name}
        source = client.get_model_version_download_uri(versions[0].name, versions[0].version)
        model = mlflow.artifacts.download_artifacts(
            source, dst_path=str(tmp_path / name), tracking_uri=env["MLFLOW_TRACKING_URI"]
        )
        assert "python_function" in (Path(model) / "MLmodel").read_text()
    evaluations = client.search_runs([experiment.experiment_id], "tags.stage = 'evaluate'")
    assert len(evaluations) == 1 + len(SWEEP) and {r.info.status for r in evaluations} == {"FINISHED"}
    assert any(key.endswith("MLmodel") for key in bucket_keys(stack, "mlartifacts/"))  # artifacts live in the bucket
    local_stores = [p for p in project.rglob("*") if p.name in ("mlflow.db", "mlruns", "mlartifacts")]
    assert local_stores == []  # nothing logged into the project or the queue's temporary copies

    # push; an interrupted push (objects missing from the remote) resumes with only what is missing
    run(["git", "push", "-q", "origin", "HEAD:main"], project)
    run(["dvc", "push"], project, env)
    pushed = bucket_keys(stack, "dvc/")
    # what a push cut midway leaves: some files uploaded, no directory manifest (.dir: DVC uploads it last)
    lost = {key for key in pushed[::2]} | {key for key in pushed if key.endswith(".dir")}
    s3(stack).delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in sorted(lost)]})
    assert "new:" in run(["dvc", "status", "--cloud"], project, env).stdout  # DVC sees what the remote lacks
    resumed = run(["dvc", "push"], project, env).stdout
    assert f"{len(lost)} files pushed" in resumed and bucket_keys(stack, "dvc/") == pushed, resumed
    exps = run(["dvc", "exp", "list", "--name-only"], project, env).stdout.split()
    assert len(exps) == len(SWEEP)
    run(["dvc", "exp", "push", "origin", *exps], project, env)

    # a second machine: clone, pull, clean status, the teammate's experiments and plots of both revisions
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", "--branch", "main", str(origin), str(clone)], tmp_path)
    run(["dvc", "pull"], clone, env)
    assert "up to date" in run(["dvc", "status"], clone, env).stdout
    run(["dvc", "exp", "pull", "origin", exps[0]], clone, env)
    assert exps[0] in run(["dvc", "exp", "list", "--name-only"], clone, env).stdout
    plots = json.loads(run(["dvc", "plots", "diff", "HEAD", exps[0], "--json"], clone, env).stdout)
    assert not plots.get("errors"), plots["errors"]
    for name in ("results/cross_age_accuracy.csv", "results/explain/figures/SAMPLE-CHILD_gradcam.png"):
        revisions = {rev for entry in plots["data"][name] for rev in entry["revisions"]}
        assert revisions == {"HEAD", exps[0]}, (name, revisions)


def test_wrong_s3_credentials_name_the_remote_and_variable(stack, tmp_path):
    project = make_project(tmp_path / "project")
    run(["dvc", "remote", "add", "-d", "team", f"s3://{BUCKET}/dvc"], project)
    run(["dvc", "remote", "modify", "team", "endpointurl", stack.s3_endpoint], project)
    env = stack.client_env()
    wrong_secret = run(["fer-age", "check-remote"], project, {**env, "AWS_SECRET_ACCESS_KEY": "wrong"}, check=False)
    assert wrong_secret.returncode == 1
    assert "DVC remote 'team'" in wrong_secret.stderr and "set AWS_SECRET_ACCESS_KEY" in wrong_secret.stderr
    wrong_key = run(
        ["fer-age", "check-remote", "team"], project, {**env, "AWS_ACCESS_KEY_ID": "AKIANOBODY"}, check=False
    )
    assert "set AWS_ACCESS_KEY_ID" in wrong_key.stderr
    no_keys = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    missing = run(
        ["fer-age", "check-remote"],
        project,
        check=False,
        env={
            **no_keys,
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
        },
    )
    assert "has no credentials" in missing.stderr


def test_server_down_fails_before_work(stack, tmp_path):
    project = make_project(tmp_path / "project")
    result = run(
        ["dvc", "repro", "split@SAMPLE-CHILD"],
        project,
        {**stack.client_env(), "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"},
        check=False,
    )
    assert result.returncode == 0  # stages before training need no server
    train = run(
        ["dvc", "repro", "train@SAMPLE-CHILD-42"],
        project,
        {**stack.client_env(), "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"},
        check=False,
    )
    assert train.returncode != 0
    assert "MLflow tracking store http://127.0.0.1:9 cannot be reached" in train.stderr + train.stdout
    assert not (project / "models" / "seed-42" / "SAMPLE-CHILD").exists()
