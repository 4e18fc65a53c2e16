import numpy as np
import pytest

from fer_age.models import MODEL_NAMES, WeightsUnavailableError, build_model, model_filename, preprocessing_fn

LARGE = {"densenet201", "resnet101v2", "resnet152v2"}  # minutes on 2 CPU cores: run with -m slow


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in LARGE else n for n in MODEL_NAMES])
def test_registry_model_trains_saves_and_reloads(name, tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    head = "m1" if name in ("vgg16", "compactcnn") else "m2"
    model = build_model(name, head, 32, 4, weights="none")
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    x = np.asarray(preprocessing_fn(name, "backbone")(x))
    model.fit(x, np.array([0, 1, 2, 3]), epochs=1, verbose=0)
    assert model.output_shape == (None, 4)
    assert any(layer.trainable for layer in model.layers)
    path = tmp_path / model_filename(name, head, "CK")
    model.save(path)
    reloaded = keras.models.load_model(path, compile=False)
    np.testing.assert_allclose(model.predict(x, verbose=0), reloaded.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_fine_tuning_policy_freezes_all_but_the_last_layers():
    import keras

    model = build_model("mobilenetv2", "m2", 32, 4, weights="none", fine_tune_layers=16)
    base_layers = [layer for layer in model.layers if layer.name.startswith(("Conv", "block", "expanded", "bn",
                                                                             "out_relu", "input"))]
    trainable = [layer for layer in base_layers if layer.trainable]
    assert 0 < len(trainable) <= 16
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in trainable)


def test_offline_imagenet_weights_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    try:
        build_model("mobilenetv2", "m2", 96, 4, weights="imagenet")
    except WeightsUnavailableError as err:
        message = str(err)
        assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5" in message
        assert "~/.keras/models/" in message and "weights: none" in message
    else:  # a machine with internet downloaded them: the real loading path works
        assert (tmp_path / "models").is_dir()


def test_model_file_names_follow_the_study():
    assert model_filename("resnet50v2", "m1", "CK") == "ResNet50V2_m1_CK.h5"


def test_null_training_params_take_the_selected_models_defaults():
    from conftest import tiny_params

    from fer_age.config import config_from_dict
    from fer_age.train import resolved_hyperparameters

    params = tiny_params()
    params["train"].update(batch_size=None, epochs=None, learning_rate=None)
    compact = resolved_hyperparameters(config_from_dict({**params, "model": "compactcnn"}))
    assert (compact["batch_size"], compact["epochs"], compact["learning_rate"], compact["weights"]) == (8, 30, 1e-3,
                                                                                                         "none")
    resnet = resolved_hyperparameters(config_from_dict({**params, "model": "resnet50"}))
    assert (resnet["batch_size"], resnet["learning_rate"], resnet["fine_tune_layers"]) == (20, 1e-4, 16)
    params["train"].update(batch_size=32, learning_rate=0.01)
    chosen = resolved_hyperparameters(config_from_dict({**params, "model": "compactcnn"}))
    assert (chosen["batch_size"], chosen["learning_rate"]) == (32, 0.01)
