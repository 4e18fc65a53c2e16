import hashlib

import cv2
import numpy as np
from conftest import LABELS

from fer_age.config import DatasetConfig
from fer_age.faces.formats import discover, subject_id
from fer_age.faces.synthetic import generate_dataset, name_seed


def _digest(folder):
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.png"))}


def test_layout_subjects_and_determinism(tmp_path):
    n = generate_dataset(
        tmp_path / "a", "SYN", "child", LABELS, subjects=3, images_per_emotion=2, scene_size=128, seed=7
    )
    generate_dataset(tmp_path / "b", "SYN", "child", LABELS, subjects=3, images_per_emotion=2, scene_size=128, seed=7)
    assert n == 3 * 4 * 2
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    items = discover(tmp_path / "a", "SYN", DatasetConfig(raw="a", age_group="child"), LABELS)
    assert sorted({i.emotion for i in items}) == LABELS
    assert {subject_id(i.path.name, r"_(s\d+)_") for i in items} == {"s00", "s01", "s02"}
    generate_dataset(tmp_path / "c", "SYN", "child", LABELS, subjects=3, images_per_emotion=2, scene_size=128, seed=8)
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_dataset_seeds_differ_for_anagram_names():
    assert name_seed("AB-1") != name_seed("BA-1") and name_seed("AB-1") == name_seed("AB-1")


def test_scenes_are_full_scenes_not_crops(tmp_path):
    generate_dataset(tmp_path, "SYN", "older", LABELS, subjects=1, images_per_emotion=1, scene_size=160, seed=1)
    image = cv2.imread(str(next(tmp_path.rglob("*.png"))))
    assert image.shape == (160, 160, 3)
    # the background varies: corners differ from the centre
    assert np.abs(image[:10, :10].astype(int).mean() - image[70:90, 70:90].astype(int).mean()) > 1


def test_mtcnn_detects_the_synthetic_faces(tmp_path):
    """Detection rate of MTCNN (weights shipped in its wheel) on every age group."""
    from fer_age.faces.cropping import choose_face
    from fer_age.faces.detection import MtcnnDetector

    detector = MtcnnDetector(min_confidence=0.8)
    rates = {}
    for group in ("child", "adult", "older"):
        generate_dataset(
            tmp_path / group, group, group, LABELS, subjects=6, images_per_emotion=2, scene_size=224, seed=42
        )
        paths = sorted((tmp_path / group).rglob("*.png"))
        images = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]
        found = detector.detect(images)
        rates[group] = np.mean([choose_face(f, 224, 224, 24)[0] is not None for f in found])
    print("MTCNN detection rate per age group:", rates)
    assert np.mean(list(rates.values())) >= 0.9, rates
    assert min(rates.values()) >= 0.85, rates
