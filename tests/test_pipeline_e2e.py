"""End to end, for real: dvc repro / dvc exp run in a temporary git repo, MLflow queried with MlflowClient."""

import json
import time

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import run
from mlflow import MlflowClient

EXPERIMENT = "fer-age-generalization"
RESULTS = ["predictions.csv", "complet_result.csv", "cross_age_accuracy.csv", "cross_dataset_accuracy.csv",
           "metrics.json", "report.md", "figures/cross_age_accuracy.png", "figures/confusion_matrices.png",
           "figures/misclassified.png"]


def _client(project):
    return MlflowClient(f"sqlite:///{project / 'mlflow.db'}")


def _runs(client, query=""):
    experiment = client.get_experiment_by_name(EXPERIMENT)
    return client.search_runs([experiment.experiment_id], filter_string=query)


def test_repro_then_experiments(project):
    out = run(["dvc", "repro"], project).stdout
    for stage in ("sample@SAMPLE-CHILD", "crop@SAMPLE-OLDER", "split@SAMPLE-CHILD", "train@SAMPLE-OLDER", "evaluate"):
        assert f"Running stage '{stage}'" in out
    for name in RESULTS:
        assert (project / "results" / name).is_file(), name
    for name in ("SAMPLE-CHILD", "SAMPLE-OLDER"):
        assert (project / "models" / name / f"CompactCNN_m2_{name}.h5").is_file()
        assert (project / "models" / name / "history.png").is_file()
        assert (project / "results" / "history" / f"{name}.csv").is_file()
        assert np.load(project / "data" / "splits" / name / "X_train.npy").shape[1:] == (32, 32, 3)
    # complet_result.csv: every model on every test split, the study's keys
    complet = pd.read_csv(project / "results" / "complet_result.csv")
    assert set(complet["key"]) == {f"CompactCNN_m2_{a}_TestOn{b}" for a in ("SAMPLE-CHILD", "SAMPLE-OLDER")
                                   for b in ("SAMPLE-CHILD", "SAMPLE-OLDER")}
    # DVC sees the metrics and the pipeline is up to date
    metrics = run(["dvc", "metrics", "show", "--json"], project).stdout
    assert "child_on_older" in metrics and "accuracy_ci_low" in metrics
    # DVC fills the custom heatmap template with the cross-age table
    plots = json.loads(run(["dvc", "plots", "show", "--json"], project).stdout)["data"]
    heatmap = plots["results/cross_age_accuracy.csv"][0]
    assert heatmap["type"] == "vega" and heatmap["content"]["spec"]["encoding"]["x"]["field"] == "test_age_group"
    cells = {(row["train_age_group"], row["test_age_group"]) for row in heatmap["content"]["data"]["values"]}
    assert cells == {(a, b) for a in ("child", "older") for b in ("child", "older")}
    assert "changed" not in run(["dvc", "status"], project).stdout
    second = run(["dvc", "repro"], project).stdout
    assert "Running stage" not in second

    # MLflow: one training run per dataset, with params, per-epoch metrics, tags and artifacts
    client = _client(project)
    training = _runs(client, "tags.stage = 'train'")
    assert sorted(r.data.tags["dataset"] for r in training) == ["SAMPLE-CHILD", "SAMPLE-OLDER"]
    for r in training:
        assert r.data.params["model"] == "compactcnn" and r.data.params["img_size"] == "32"
        for key in ("head", "epochs", "learning_rate", "batch_size", "weights", "preprocessing", "seed",
                    "fine_tune_layers", "n_train", "n_valid", "age_group", "dataset"):
            assert key in r.data.params, key
        assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr"} <= set(r.data.metrics)
        assert len(client.get_metric_history(r.info.run_id, "val_accuracy")) == 1  # one epoch
        assert r.data.tags["age_group"] in ("child", "older") and len(r.data.tags["mlflow.source.git.commit"]) == 40
        artifacts = {a.path for a in client.list_artifacts(r.info.run_id, "model")}
        assert f"model/CompactCNN_m2_{r.data.tags['dataset']}.h5" in artifacts
    evaluation = _runs(client, "tags.stage = 'evaluate'")
    assert len(evaluation) == 1
    assert set(evaluation[0].data.tags["training_run_ids"].split(",")) == {r.info.run_id for r in training}

    # changing one dataset's params re-runs only that dataset's stages (and evaluation)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["datasets"]["SAMPLE-OLDER"]["subject_pattern"] = r"_(s\d\d)_"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run(["dvc", "repro"], project).stdout
    assert "Running stage 'split@SAMPLE-OLDER'" in out and "Running stage 'evaluate'" in out
    assert "Running stage 'split@SAMPLE-CHILD'" not in out and "Running stage 'crop@SAMPLE-OLDER'" not in out
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "baseline"], project)

    # a DVC experiment with another backbone: its runs carry the experiment's name
    out = run(["dvc", "exp", "run", "-n", "try-resnet50", "-S", "model=resnet50", "-S", "train.weights=none"],
              project).stdout
    assert "Running stage 'train@SAMPLE-CHILD'" in out
    resnet = _runs(client, "params.model = 'resnet50' and tags.stage = 'train'")
    assert len(resnet) == 2 and {r.data.tags["dvc_exp_name"] for r in resnet} == {"try-resnet50"}
    shown = run(["dvc", "exp", "show", "--json"], project).stdout
    assert "try-resnet50" in shown and "child_on_older" in shown


@pytest.mark.slow
def test_queued_sweep_lands_in_the_same_store(project):
    run(["dvc", "repro"], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "baseline"], project)
    run(["dvc", "exp", "run", "--queue", "-S", "model=mobilenetv2,resnet50", "-S", "train.weights=none"], project)
    run(["dvc", "queue", "start"], project)
    deadline = time.time() + 900
    while time.time() < deadline:
        status = run(["dvc", "queue", "status"], project).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(5)
    assert status.count("Success") == 2, status + run(["dvc", "queue", "logs", "-f"], project, check=False).stdout
    client = _client(project)
    names = set()
    for model in ("mobilenetv2", "resnet50"):
        runs = _runs(client, f"params.model = '{model}' and tags.stage = 'train'")
        assert len(runs) == 2 and len({r.data.tags["dvc_exp_name"] for r in runs}) == 1, model
        names.add(runs[0].data.tags["dvc_exp_name"])
    assert len(names) == 2
    assert not list((project / ".dvc" / "tmp" / "exps").rglob("mlflow.db"))
    shown = run(["dvc", "exp", "show", "--json"], project).stdout
    assert all(name in shown for name in names)
