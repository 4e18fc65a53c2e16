import pytest
import yaml
from conftest import REPO, tiny_params

from fer_age.config import ConfigError, config_from_dict, load_config


def test_project_params_are_valid():
    config = load_config(REPO / "params.yaml")
    assert config.model in ("compactcnn", "mobilenetv2")
    assert {d.age_group for d in config.datasets.values()} == {"child", "adult", "older"}


def _error(params: dict) -> str:
    with pytest.raises(ConfigError) as err:
        config_from_dict(params)
    return str(err.value)


def test_unknown_nested_key_is_named():
    params = tiny_params()
    params["crop"]["detector"] = ["mtcnn"]
    assert "'crop.detector'" in _error(params)


def test_unknown_top_level_key_is_named():
    assert "'epochs'" in _error(tiny_params(epochs=3))


def test_unknown_detector_is_named():
    params = tiny_params()
    params["crop"]["detectors"] = ["mtcnn", "dlib"]
    message = _error(params)
    assert "crop.detectors[1]" in message and "dlib" in message and "retinaface" in message


def test_dataset_without_age_group():
    params = tiny_params()
    params["datasets"]["CK"] = {"subject_pattern": "^(S\\d+)_"}
    assert "'datasets.CK.age_group'" in _error(params)


def test_unknown_age_group():
    params = tiny_params()
    params["datasets"]["CK"] = {"age_group": "teen"}
    assert "datasets.CK.age_group" in _error(params)


def test_unknown_model_lists_valid_names():
    message = _error(tiny_params(model="resnet51"))
    assert "resnet51" in message and "resnet50" in message and "vgg16" in message


def test_subject_pattern_needs_a_group():
    params = tiny_params()
    params["datasets"]["CK"] = {"age_group": "adult", "subject_pattern": "S\\d+"}
    assert "capture group" in _error(params)


def test_wrong_type_is_named():
    params = tiny_params()
    params["train"]["epochs"] = "many"
    assert "'train.epochs'" in _error(params)


def test_scientific_notation_strings_are_numbers(tmp_path):
    params = tiny_params()
    params["train"]["learning_rate"] = "1e-4"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    assert load_config(path).train.learning_rate == pytest.approx(1e-4)


def test_cli_rejects_invalid_params_before_any_work(tmp_path, monkeypatch):
    from fer_age.cli import main

    monkeypatch.chdir(tmp_path)
    params = tiny_params(head="m3")
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    assert main(["--params", str(path), "sample", "SAMPLE-CHILD"]) == 1
    assert not (tmp_path / "data").exists()
