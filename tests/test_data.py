"""The input pipeline: raw uint8 batches from memory-mapped splits, augmentation and preprocessing on the device."""

import os
import subprocess
import sys

import keras
import numpy as np

from fer_age.modeling.inputs import DeviceInput, make_dataset, with_device_input
from fer_age.modeling.models import build_model, preprocessing_fn
from fer_age.registry import model_spec

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)
LABELS = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 1])


def test_raw_batches_are_the_stored_uint8_images_in_order_with_their_targets_and_weights():
    batches = list(make_dataset(IMAGES, LABELS, 4, None, 4, sample_weights=LABELS + 1.0))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    images = np.concatenate([b[0].numpy() for b in batches])
    assert images.dtype == np.uint8 and np.array_equal(images, IMAGES)
    assert np.array_equal(np.concatenate([b[1].numpy() for b in batches]).argmax(axis=1), LABELS)
    assert np.array_equal(np.concatenate([b[2].numpy() for b in batches]), LABELS + 1.0)


def test_preprocessed_batches_are_float32_images_mapped_by_the_function():
    ((images, targets),) = make_dataset(IMAGES, LABELS, 10, lambda x: x / 255.0, 4)
    assert images.dtype == "float32" and np.allclose(images.numpy(), IMAGES / 255.0)


def test_device_input_augments_only_when_training_and_then_preprocesses():
    preprocess = preprocessing_fn(model_spec("resnet50"), "backbone")
    expected = keras.ops.convert_to_numpy(preprocess(IMAGES.astype(np.float32)))
    device_input = DeviceInput(preprocess, seed=1, augment=True, rotation=0.1, zoom=0.1)
    assert np.allclose(keras.ops.convert_to_numpy(device_input(IMAGES, training=False)), expected)
    augmented = keras.ops.convert_to_numpy(device_input(IMAGES, training=True))
    assert augmented.shape == expected.shape and not np.allclose(augmented, expected)
    # brightness is clipped to the pixel range before preprocessing (caffe mode: BGR minus the ImageNet mean)
    assert augmented.max() <= 255 - 103.939 + 1e-3 and augmented.min() >= -123.68 - 1e-3
    again = keras.ops.convert_to_numpy(
        DeviceInput(preprocess, seed=1, augment=True, rotation=0.1, zoom=0.1)(IMAGES, training=True)
    )
    assert np.array_equal(augmented, again)  # the same seed, the same augmentation
    off = DeviceInput(preprocess, seed=1, augment=False)
    assert np.allclose(keras.ops.convert_to_numpy(off(IMAGES, training=True)), expected)


def test_the_fitted_wrapper_trains_the_classifier_that_is_saved():
    classifier = build_model(model_spec("compactcnn"), "m2", 16, ["A", "B", "C", "D"], "none")
    preprocess = preprocessing_fn(model_spec("compactcnn"), "backbone")
    model = with_device_input(classifier, preprocess, seed=3, augment=True)
    assert [w.path for w in model.weights] == [w.path for w in classifier.weights]
    direct = classifier.predict(preprocess(IMAGES.astype(np.float32)), verbose=0)
    assert np.allclose(model.predict(IMAGES, verbose=0), direct, atol=1e-6)
    before = classifier.get_weights()
    model.compile("adam", "categorical_crossentropy")
    model.fit(make_dataset(IMAGES, LABELS, 5, None, 4, training=True), epochs=1, verbose=0, shuffle=False)
    assert any(not np.allclose(a, b) for a, b in zip(before, classifier.get_weights(), strict=True))


def test_gpu_memory_grows_as_used_unless_the_environment_says_otherwise():
    code = (
        "from fer_age.runtime import quiet_tensorflow; import os; quiet_tensorflow(); "
        "print(os.environ['TF_FORCE_GPU_ALLOW_GROWTH'])"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_FORCE_GPU_ALLOW_GROWTH"}
    default = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    chosen = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "TF_FORCE_GPU_ALLOW_GROWTH": "false"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert (default.stdout.strip(), chosen.stdout.strip()) == ("true", "false")
