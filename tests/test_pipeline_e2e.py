"""End to end, for real: dvc repro / dvc exp run in a temporary git repo, MLflow queried with MlflowClient."""

import json
import re
import time

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import commit, run, stages_run, stale_stages, start_workers, stop_workers, wait_for_queue
from mlflow import MlflowClient

EXPERIMENT = "fer-age-generalization"
DATASETS = ["SAMPLE-CHILD", "CKP", "FACES", "KIDS"]
RESULTS = [
    "predictions.csv",
    "complet_result.csv",
    "cross_age_accuracy.csv",
    "cross_dataset_accuracy.csv",
    "metrics.json",
    "report.md",
    "figures/cross_age_accuracy.png",
    "figures/confusion_matrices.png",
    "figures/misclassified.png",
]


def _client(project):
    return MlflowClient(f"sqlite:///{project / 'mlflow.db'}")


def _runs(client, query=""):
    experiment = client.get_experiment_by_name(EXPERIMENT)
    return client.search_runs([experiment.experiment_id], filter_string=query)


def test_study_repro_runs_every_stage_and_is_up_to_date(study):
    log = (study / "repro.log").read_text()
    for stage in (
        "sample@SAMPLE-CHILD",
        "crop@CKP",
        "crop@FACES",
        "crop@KIDS",
        "split@FACES",
        "train@KIDS-42",
        "train@KIDS-43",
        "pool@42",
        "evaluate",
        "explain",
    ):
        assert f"Running stage '{stage}'" in log
    for name in RESULTS:
        assert (study / "results" / name).is_file(), name
    for name in DATASETS:
        assert (study / "models" / "seed-42" / name / f"CompactCNN_m2_{name}.h5").is_file()
        assert (study / "results" / "history" / "seed-43" / f"{name}.csv").is_file()
        assert np.load(study / "data" / "splits" / name / "X_train.npy").shape[1:] == (32, 32, 3)
    assert (study / "models" / "seed-43" / "POOL" / "POOL-all" / "CompactCNN_m2_POOL-all.h5").is_file()
    assert stale_stages(study) == {}
    again = run(["dvc", "repro"], study).stdout
    assert stages_run(again) == [] and "Running stage 'inventory@CKP'" in again  # the raw folders' stand-ins


def test_every_params_key_a_stage_reads_is_declared_in_its_dvc_yaml_params(study):
    """What each stage read from params (recorded by the stages themselves during the repro) against what DVC
    resolved as the stage's params in dvc.lock: an undeclared key would leave stale outputs when it changes."""
    lock = yaml.safe_load((study / "dvc.lock").read_text())["stages"]
    records = [json.loads(line) for line in (study / "params_read.jsonl").read_text().splitlines()]
    assert {"sample@SAMPLE-CHILD", "crop@CKP", "split@FACES", "train@KIDS-43", "pool@42", "evaluate", "explain"} <= {
        r["stage"] for r in records
    }
    for record in records:
        declared = set(lock[record["stage"]]["params"]["params.yaml"])
        undeclared = [k for k in record["reads"] if not any(k == d or k.startswith(f"{d}.") for d in declared)]
        assert record["reads"] and not undeclared, f"{record['stage']} reads {undeclared}, undeclared in dvc.yaml"


def test_explain_stage_writes_maps_shares_and_a_report_section(study):
    log = (study / "repro.log").read_text()
    assert "Running stage 'explain'" in log
    assert "WARNING:tensorflow" not in log  # six models predicting in turn: no "excessive retracing" noise
    folder = study / "results" / "explain"
    for name in [*DATASETS, "POOL-all"]:
        assert (folder / "figures" / f"{name}_gradcam.png").is_file()
        assert (folder / "figures" / f"{name}_gallery.png").is_file()
    table = pd.read_csv(folder / "saliency.csv")
    overall = table[table["emotion"] == "all"]
    assert set(overall["model_name"]) == {*DATASETS, "POOL-all"}
    assert set(overall["test_age_group"]) == {"child", "adult", "older"}
    assert overall["upper_share"].between(0, 1).all()
    assert (overall["upper_share_ci_low"] <= overall["upper_share"]).all()
    assert set(table["emotion"]) == {"all", "Angry", "Fear", "Happy", "Sad"}
    section = (folder / "report.md").read_text()
    assert "# Where the models look" in section and "**KIDS** (trained on child)" in section
    # a model that learned gets the difference from its own group with a CI; a degenerate one no verdict
    blocks = {block.split("**", 1)[0]: block for block in section.split("- **")[1:]}
    for name, block in blocks.items():
        folder = study / "models" / "seed-42" / ("POOL/" if name.startswith("POOL") else "") / name
        degenerate = json.loads((folder / "training.json").read_text())["degenerate"]
        assert ("**degenerate**" in block) == bool(degenerate), name
        assert ("against " in block) == (not degenerate), name
    assert set(blocks) == {*DATASETS, "POOL-all"}
    client = _client(study)
    run = _runs(client, "tags.stage = 'train' and tags.name = 'KIDS' and tags.seed = '42'")[0]  # explain's seed
    assert {a.path for a in client.list_artifacts(run.info.run_id, "explain")} == {
        "explain/KIDS_gradcam.png",
        "explain/KIDS_gallery.png",
    }


def test_native_layouts_are_read_with_their_labels_subjects_and_age_groups(study):
    def report(name):
        return pd.read_csv(study / "data" / "cropped" / name / "crop_report.csv", keep_default_na=False)

    usable = ["cropped", "no_face_kept_full"]
    ck = report("CKP")
    counts = ck["status"].value_counts()
    assert counts["unlabelled"] == 6 * 3  # one unlabelled sequence of 3 frames per subject
    assert counts["not_peak_frame"] == 6 * 6  # 6 labelled sequences x (3 frames - 2 peak frames)
    assert counts["excluded_emotion"] == 6 * 2 * 2  # disgust and surprise sequences
    assert counts["metadata"] == 6 * 6  # the label files
    assert ck["status"].isin(usable).sum() == 6 * 4 * 2
    assert set(ck.loc[ck["status"].isin(usable), "subject"]) == {f"S{s:03d}" for s in range(1, 7)}
    faces = report("FACES")
    assert set(faces.loc[faces["status"].isin(usable), "age_group"]) == {"adult", "older"}
    kids = report("KIDS")
    excluded = kids[kids["status"] == "excluded_emotion"]
    assert set(excluded["emotion"]) == {"Disgust", "Neutral", "Surprise", "Contempt"}
    assert (kids["status"] == "metadata").sum() == 1  # labels.csv itself
    manifest = pd.read_csv(study / "data" / "splits" / "FACES" / "manifest.csv")
    for split in ("train", "test"):
        assert set(manifest.loc[manifest["split"] == split, "age_group"]) == {"adult", "older"}


def test_cross_age_tables_hold_per_image_groups_pooled_model_and_baseline(study):
    predictions = pd.read_csv(study / "results" / "predictions.csv")
    faces = predictions[predictions["test_dataset"] == "FACES"]
    assert set(faces["test_age_group"]) == {"adult", "older"}  # one dataset, two test cells
    cross_age = pd.read_csv(study / "results" / "cross_age_accuracy.csv")
    trained = set(cross_age["train_age_group"])
    assert {"child", "adult", "adult+older", "POOL-all", "FER2013"} == trained
    assert set(cross_age["test_age_group"]) == {"child", "adult", "older"}
    assert cross_age.loc[cross_age["train_age_group"] == "FER2013", "baseline"].all()
    assert not cross_age.loc[cross_age["train_age_group"] != "FER2013", "baseline"].any()
    complet = pd.read_csv(study / "results" / "complet_result.csv")
    keys = set(complet["key"])
    assert {f"CompactCNN_m2_{a}_TestOn{b}" for a in [*DATASETS, "POOL-all"] for b in DATASETS} <= keys
    assert {f"MiniXception_default_FER2013_TestOn{b}" for b in DATASETS} <= keys
    assert complet.loc[complet["train_dataset"] == "FER2013", "baseline"].all()
    assert set(cross_age["n_seeds"]) == {1, 2}  # the baseline is not trained: one "seed"
    assert cross_age.loc[~cross_age["baseline"], "accuracy_sd"].notna().all()
    report = (study / "results" / "report.md").read_text()
    assert report.splitlines()[2].startswith("**Answer.** In accuracy, trained on **child** faces")
    assert "Means over 2 training seeds" in report and "off-the-shelf FER2013 model" in report
    gaps = pd.read_csv(study / "results" / "age_gaps.csv")
    assert set(gaps["kind"]) == {"own_vs_other", "baseline", "mixed_age"}
    assert (gaps["comparisons"] == len(gaps) // 2).all() and (gaps["gap_ci_low"] <= gaps["gap_ci_high"]).all()
    gains = pd.read_csv(study / "results" / "baseline_gains.csv")
    pairs = set(zip(gains["train_age_group"], gains["test_age_group"]))
    assert {("child", "child"), ("adult", "adult"), ("POOL-all", "older"), ("adult+older", "older")} <= pairs
    assert ("child", "adult") not in pairs and (gains["baseline"] == "FER2013").all()
    assert (gains["gain_ci_low"] <= gains["gain_ci_high"]).all() and set(gains["score"]) == {"accuracy", "macro_f1"}
    accuracy = gains[gains["score"] == "accuracy"]  # an accuracy gain is the answers fixed minus those broken
    assert np.allclose(accuracy["gain"], (accuracy["images_fixed"] - accuracy["images_broken"]) / accuracy["n_images"])
    assert "## Against the off-the-shelf model" in report
    recall = pd.read_csv(study / "results" / "recall_by_emotion.csv")
    assert set(recall["emotion"]) == {"Angry", "Fear", "Happy", "Sad"}
    assert (recall.loc[recall["train_age_group"] != "FER2013", "n_seeds"] == 2).all()
    assert (study / "results" / "figures" / "recall_by_emotion.png").is_file()


def test_dvc_metrics_and_plots(study):
    metrics = json.loads(run(["dvc", "metrics", "show", "--json"], study).stdout)
    values = next(iter(metrics.values()))["data"]["results/metrics.json"]["data"]
    assert values["n_seeds"] == 2 and set(values["gap"]) == {"child", "adult"}
    assert set(values["gap"]["child"]) == {"own", "other", "gap", "low", "high"}
    assert set(values["baseline"]["FER2013"]) == {"child", "adult", "older", "worst", "gap"}
    assert {"POOL-all", "adult+older"} <= set(values["mixed_age"])
    assert set(values["baseline_gain"]["child"]) == {"child"} and set(values["baseline_gain"]["POOL-all"]) == {
        "child",
        "adult",
        "older",
    }
    plots = json.loads(run(["dvc", "plots", "show", "--json"], study).stdout)["data"]
    heatmap = plots["results/cross_age_accuracy.csv"][0]
    assert heatmap["type"] == "vega" and heatmap["content"]["spec"]["encoding"]["x"]["field"] == "test_age_group"
    cells = {(row["train_age_group"], row["test_age_group"]) for row in heatmap["content"]["data"]["values"]}
    assert ("child", "older") in cells and ("FER2013", "adult") in cells
    assert "results/explain/figures/KIDS_gradcam.png" in plots and not json.loads(
        run(["dvc", "plots", "show", "--json"], study).stdout
    ).get("errors")


def test_dvc_plots_page_opens_on_the_heatmap_and_loads_nothing_from_the_internet(study, tmp_path):
    run(["dvc", "plots", "show", "-o", str(tmp_path / "page")], study)
    page = (tmp_path / "page" / "index.html").read_text()
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts and not [tag for tag in scripts if "src=" in tag]  # every library is inside the page
    assert "cdn." not in page and "vega@5.20.2" in page and "vega-embed@6.18.2" in page
    plots = re.findall(r'<div id = "([^"]+)"|id="(results_[^"]+)"', page)
    assert [a or b for a, b in plots][0] == "results_cross_age_accuracy_csv"


def test_mlflow_runs_of_the_repro(study):
    client = _client(study)
    training = _runs(client, "tags.stage = 'train'")
    assert sorted((r.data.tags["name"], r.data.tags["seed"]) for r in training) == sorted(
        (name, seed) for name in DATASETS for seed in ("42", "43")
    )
    for r in training:
        assert r.data.params["model"] == "compactcnn" and r.data.params["img_size"] == "32"
        for key in (
            "head",
            "epochs",
            "learning_rate",
            "batch_size",
            "weights",
            "preprocessing",
            "seed",
            "fine_tune_layers",
            "n_train",
            "n_valid",
            "age_group",
            "datasets",
        ):
            assert key in r.data.params, key
        assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "best_epoch", "best_val_accuracy"} <= set(
            r.data.metrics
        )
        assert len(client.get_metric_history(r.info.run_id, "val_accuracy")) == 2  # epoch 0 and epoch 1
        assert len(r.data.tags["mlflow.source.git.commit"]) == 40 and r.data.tags["pipeline"]
        assert r.info.run_name.startswith(r.data.tags["name"])
    pooled = _runs(client, "tags.stage = 'pool'")
    assert len(pooled) == 2 and set(pooled[0].data.tags["dataset"].split(",")) == set(DATASETS)
    for r in pooled:  # selected on the worst age group's validation score, logged per epoch from epoch 0
        assert r.data.params["monitor"] == "val_worst_group_macro_f1"
        history = {
            key: client.get_metric_history(r.info.run_id, key) for key in ("val_accuracy", "val_worst_group_macro_f1")
        }
        overall = {m.step: m.value for m in history["val_accuracy"]}
        worst = client.get_metric_history(r.info.run_id, "val_worst_group_accuracy")  # a group's is at most the mean
        assert sorted(m.step for m in worst) == sorted(m.step for m in history["val_worst_group_macro_f1"])
        assert sorted(overall) == sorted(m.step for m in worst) and all(
            m.value <= overall[m.step] + 1e-6 for m in worst
        )
    evaluation = _runs(client, "tags.stage = 'evaluate'")
    assert len(evaluation) == 1
    parent = evaluation[0]
    assert {r.info.run_id for r in [*training, *pooled]} == set(parent.data.tags["training_run_ids"].split(","))
    assert {"headline/gap/child/gap", "headline/baseline/FER2013/worst"} <= set(parent.data.metrics)
    for r in [*training, *pooled]:  # children of the evaluation, every one with the same test metric names
        r = client.get_run(r.info.run_id)
        assert r.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert {"test/accuracy/child", "test/accuracy/adult", "test/accuracy/older", "test/macro_f1/worst"} <= set(
            r.data.metrics
        )
    own = [client.get_run(r.info.run_id) for r in training if r.data.tags["age_group"] in ("child", "adult")]
    assert all({"test/accuracy/own", "test/accuracy/other", "test/accuracy/gap"} <= set(r.data.metrics) for r in own)
    kind = client.get_experiment(parent.info.experiment_id).tags["mlflow.experimentKind"]
    assert kind == "custom_model_development"  # the UI opens on the runs, not on GenAI traces
    assert len({r.data.tags["pipeline"] for r in [*training, *pooled, *evaluation]}) == 1
    assert not _runs(client, "attributes.status = 'RUNNING'")


def test_registered_versions_carry_a_description_and_the_champion_has_the_best_validation_score(study):
    client = _client(study)
    for name in DATASETS:
        versions = client.search_model_versions(f"name = 'CompactCNN_m2_{name}'")
        assert len(versions) == 2  # one per seed
        for v in versions:
            assert f"trained on {name}" in v.description and f"seed {v.tags['seed']}" in v.description
            assert "Test: accuracy" in v.description
        champion = client.get_model_version_by_alias(f"CompactCNN_m2_{name}", "champion")
        best = max(versions, key=lambda v: (v.tags["degenerate"] == "false", float(v.tags["validation_score"])))
        assert (champion.tags["degenerate"], champion.tags["validation_score"]) == (
            best.tags["degenerate"],
            best.tags["validation_score"],
        )


NOISE = (
    "cuInit",
    "oneDNN custom operations",
    "absl::InitializeLog",
    "cudart_stub",
    "Downloading artifacts",
    "type hints",
    "UserWarning",
    "Successfully registered",
    "rebuild TensorFlow",
)


def test_the_console_carries_no_library_noise(study):
    log = (study / "repro.log").read_text()
    assert [line for line in log.splitlines() if any(n in line for n in NOISE)] == []
    assert "registered CompactCNN_m2_KIDS version 1" in log
    best_epoch = json.loads((study / "models" / "seed-42" / "KIDS" / "training.json").read_text())["best_epoch"]
    kept = "the starting model itself" if best_epoch == 0 else f"epoch {best_epoch}"
    assert f"train KIDS: 1 epochs, kept {kept}" in log  # the run says when it keeps the model it started from
    assert "| train_age_group | test_age_group |" in log  # evaluate ends by printing the table


def test_each_training_run_logs_a_usable_registered_mlflow_model(study):
    import keras
    import mlflow

    from fer_age.modeling.models import preprocessing_fn
    from fer_age.registry import model_spec

    client = _client(study)
    run = _runs(client, "tags.stage = 'train' and tags.name = 'KIDS' and tags.seed = '42'")[0]
    mlflow.set_tracking_uri(f"sqlite:///{study / 'mlflow.db'}")
    pyfunc = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    images = np.load(study / "data" / "splits" / "KIDS" / "X_test.npy")
    got = pyfunc.predict(images)
    keras_model = keras.models.load_model(
        study / "models" / "seed-42" / "KIDS" / "CompactCNN_m2_KIDS.h5", compile=False
    )
    expected = keras_model.predict(
        preprocessing_fn(model_spec("compactcnn"), "rescale")(images.astype("float32")), verbose=0
    )
    labels = ["Angry", "Fear", "Happy", "Sad"]
    np.testing.assert_allclose(got[[f"p_{label}" for label in labels]].to_numpy(), expected, atol=1e-5)
    assert list(got["label"]) == [labels[i] for i in expected.argmax(axis=1)]
    assert pyfunc.metadata.signature.inputs.to_dict()[0]["tensor-spec"]["dtype"] == "uint8"
    versions = client.search_model_versions("name = 'CompactCNN_m2_KIDS'")
    assert len(versions) == 2 and run.info.run_id in {v.run_id for v in versions}  # one version per seed
    inputs = {
        (d.dataset.name, d.dataset.digest, {t.key: t.value for t in d.tags}["mlflow.data.context"])
        for d in client.get_run(run.info.run_id).inputs.dataset_inputs
    }
    lock = yaml.safe_load((study / "dvc.lock").read_text())["stages"]["split@KIDS"]["outs"][0]["md5"]
    digest = lock.removesuffix(".dir")
    assert {
        ("KIDS/train", digest, "training"),
        ("KIDS/valid", digest, "validation"),
        ("KIDS/test", digest, "testing"),
    } <= inputs
    assert (
        "FACES/test",
        yaml.safe_load((study / "dvc.lock").read_text())["stages"]["split@FACES"]["outs"][0]["md5"].removesuffix(
            ".dir"
        ),
        "testing",
    ) in inputs


def test_predict_applies_a_model_to_new_files_of_every_kind(study, tmp_path, monkeypatch):
    import cv2

    from fer_age.cli import main

    photos = tmp_path / "photos"
    photos.mkdir()
    scenes = sorted((study / "data" / "raw" / "SAMPLE-CHILD").rglob("*.png"))[:3]
    for scene in scenes:
        (photos / scene.name).write_bytes(scene.read_bytes())
    cv2.imwrite(str(photos / "tiny.png"), np.zeros((10, 12, 3), np.uint8))
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    (photos / "notes.txt").write_text("x")
    monkeypatch.chdir(study)
    results = {}
    query = "tags.stage = 'train' and tags.name = 'SAMPLE-CHILD' and tags.seed = '42'"
    run_id = _runs(_client(study), query)[0].info.run_id
    h5 = "models/seed-42/SAMPLE-CHILD/CompactCNN_m2_SAMPLE-CHILD.h5"  # the same model
    for kind, model in (("h5", h5), ("mlflow", f"runs:/{run_id}/model")):
        out = tmp_path / f"{kind}.csv"
        assert main(["predict", str(photos), str(tmp_path / "absent.png"), "--model", model, "--out", str(out)]) == 0
        results[kind] = pd.read_csv(out, keep_default_na=False)
    table = results["h5"].set_index(results["h5"]["file"].map(lambda f: f.rsplit("/", 1)[-1]))
    assert table.loc["tiny.png", "status"] == "too_small" and table.loc["broken.jpg", "status"] == "unreadable"
    assert table.loc["notes.txt", "status"] == "not_an_image" and table.loc["absent.png", "status"] == "missing"
    good = table.loc[[s.name for s in scenes]]
    assert good["status"].isin(["cropped", "no_face_kept_full"]).all() and good["label"].ne("").all()
    assert np.allclose(good[["p_Angry", "p_Fear", "p_Happy", "p_Sad"]].astype(float).sum(axis=1), 1, atol=1e-4)
    pd.testing.assert_frame_equal(results["h5"].drop(columns="message"), results["mlflow"].drop(columns="message"))


def test_predict_loads_other_mlflow_models_only_when_told_to_trust_their_code(study, tmp_path, monkeypatch, capsys):
    from mlflow import MlflowClient

    from fer_age.cli import main

    monkeypatch.chdir(study)
    run_id = _runs(_client(study), "tags.stage = 'train' and tags.name = 'SAMPLE-CHILD'")[0].info.run_id
    folder = MlflowClient(f"sqlite:///{study / 'mlflow.db'}").download_artifacts(run_id, "model", str(tmp_path))
    photo = sorted((study / "data" / "raw" / "SAMPLE-CHILD").rglob("*.png"))[0]
    out = tmp_path / "p.csv"
    for uri in (f"file://{folder}", folder):
        assert main(["predict", str(photo), "--model", uri, "--out", str(out)]) == 1
        assert "--trust-model-code" in capsys.readouterr().err and not out.exists()
    assert main(["predict", str(photo), "--model", f"file://{folder}", "--out", str(out), "--trust-model-code"]) == 0
    assert pd.read_csv(out)["label"].notna().all()
    started = time.perf_counter()  # a folder as --out fails before the model is loaded or any photo read
    assert main(["predict", str(photo), "--model", f"runs:/{run_id}/model", "--out", str(tmp_path)]) == 1
    assert "must name a .csv file" in capsys.readouterr().err and time.perf_counter() - started < 5


def test_changing_one_dataset_reruns_only_what_changes(study_copy):
    params = yaml.safe_load((study_copy / "params.yaml").read_text())
    params["datasets"]["SAMPLE-CHILD"]["subject_pattern"] = r"_(s\d\d)_"  # finds the same subjects
    (study_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run(["dvc", "repro", "evaluate"], study_copy).stdout  # evaluate and what it depends on (not explain)
    assert "Running stage 'crop@SAMPLE-CHILD'" in out and "Running stage 'evaluate'" in out
    assert "Stage 'split@SAMPLE-CHILD' didn't change, skipping" in out  # identical crops: nothing downstream
    for other in ("crop@CKP", "split@FACES", "train@KIDS-42", "train@SAMPLE-CHILD-43"):
        assert f"Running stage '{other}'" not in out


def test_own_and_pooled_rows_rerun_only_evaluate_and_average_the_two_models_predictions(study_copy):
    params = yaml.safe_load((study_copy / "params.yaml").read_text())
    params["evaluate"]["own_and_pooled"] = True
    (study_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run(["dvc", "repro", "evaluate"], study_copy).stdout
    assert "Running stage 'evaluate'" in out and "Running stage 'pool@42'" not in out
    predictions = pd.read_csv(study_copy / "results" / "predictions.csv")
    columns = [c for c in predictions.columns if c.startswith("p_")]
    keys = ["seed", "test_dataset", "source"]
    combined = predictions[predictions["train_dataset"] == "POOL-all+own"].set_index(keys)[columns].sort_index()
    pooled = predictions[predictions["train_dataset"] == "POOL-all"].set_index(keys)[columns]
    own = predictions[predictions["train_dataset"] == predictions["test_dataset"]].set_index(keys)[columns]
    assert len(combined) == len(pooled) > 0  # every test image of every seed
    expected = ((pooled + own) / 2).loc[combined.index]
    np.testing.assert_allclose(combined.to_numpy(), expected.to_numpy(), atol=1e-6)
    cross_age = pd.read_csv(study_copy / "results" / "cross_age_accuracy.csv")
    assert set(cross_age.loc[cross_age["train_age_group"] == "POOL-all+own", "test_age_group"]) == {
        "child",
        "adult",
        "older",
    }
    metrics = json.loads((study_copy / "results" / "metrics.json").read_text())
    assert {"POOL-all", "POOL-all+own"} <= set(metrics["mixed_age"]) and "POOL-all+own" in metrics["baseline_gain"]


def test_experiment_runs_carry_the_experiment_name_and_register_a_new_version(study_copy):
    out = run(
        ["dvc", "exp", "run", "-n", "two-epochs", "-S", "train.epochs=2", "train@SAMPLE-CHILD-42"], study_copy
    ).stdout
    assert "Running stage 'train@SAMPLE-CHILD-42'" in out
    client = _client(study_copy)
    runs = _runs(client, "params.epochs = '2' and tags.stage = 'train'")
    assert len(runs) == 1 and runs[0].data.tags["dvc_exp_name"] == "two-epochs"
    assert runs[0].data.tags["pipeline"] == "two-epochs"
    versions = {str(v.version): v.run_id for v in client.search_model_versions("name = 'CompactCNN_m2_SAMPLE-CHILD'")}
    assert len(versions) == 3 and versions["3"] == runs[0].info.run_id  # seeds 42 and 43, then the experiment
    assert "two-epochs" in run(["dvc", "exp", "show", "--json"], study_copy).stdout


@pytest.mark.slow
def test_queued_sweep_lands_in_the_same_store(study_copy):
    run(["dvc", "exp", "run", "--queue", "-S", "model=mobilenetv2,resnet50", "-S", "train.weights=none"], study_copy)
    try:
        start_workers(study_copy, {}, 1)
        status = wait_for_queue(study_copy, {}, 1800)
    finally:
        stop_workers(study_copy)
    assert status.count("Success") == 2, status + run(["dvc", "queue", "logs", "-f"], study_copy, check=False).stdout
    client = _client(study_copy)
    names, seeds = set(), yaml.safe_load((study_copy / "params.yaml").read_text())["seeds"]
    for model in ("mobilenetv2", "resnet50"):
        runs = _runs(client, f"params.model = '{model}' and tags.stage = 'train'")
        assert len(runs) == len(DATASETS) * len(seeds) and len({r.data.tags["dvc_exp_name"] for r in runs}) == 1, model
        names.add(runs[0].data.tags["dvc_exp_name"])
    assert len(names) == 2
    assert not list((study_copy / ".dvc" / "tmp" / "exps").rglob("mlflow.db"))
    commit(study_copy, "after sweep")
