import hashlib

import numpy as np
import pandas as pd
import pytest
from conftest import LABELS
from PIL import Image

from fer_age.config import SplitConfig
from fer_age.split import SplitError, group_ids, run_split


def _crop_dir(tmp_path, subjects=10, per_subject=2, duplicates=True):
    """A crop-stage output: images of ``subjects`` people per emotion, plus byte-identical copies."""
    root = tmp_path / "cropped"
    rows = []
    rng = np.random.default_rng(0)
    for label, emotion in enumerate(LABELS):
        folder = root / f"D_{emotion}_cropped"
        folder.mkdir(parents=True)
        for s in range(subjects):
            for k in range(per_subject):
                name = f"D_s{s:02d}_{emotion}_{k}"
                Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(folder / f"{name}.png")
                rows.append({"source": f"D_{emotion}/{name}.jpg", "emotion": emotion, "label": label,
                             "status": "cropped", "output": f"D_{emotion}_cropped/{name}.png"})
        if duplicates:  # the same photo filed under another (unknown) subject name
            copy = folder / "copy_of_s00.png"
            copy.write_bytes((folder / f"D_s00_{emotion}_0.png").read_bytes())
            rows.append({"source": f"D_{emotion}/copy.jpg", "emotion": emotion, "label": label,
                         "status": "cropped", "output": f"D_{emotion}_cropped/copy_of_s00.png"})
    pd.DataFrame(rows).to_csv(root / "crop_report.csv", index=False)
    return root


def _split(tmp_path, out="splits", cfg=None, seed=42, **kwargs):
    cfg = cfg or SplitConfig()
    crop = _crop_dir(tmp_path, **kwargs) if not (tmp_path / "cropped").exists() else tmp_path / "cropped"
    manifest = run_split(crop, tmp_path / out, r"_(s\d+)_", 16, cfg, seed, LABELS)
    return manifest, tmp_path / out


def test_subject_disjoint_and_no_duplicate_across_splits(tmp_path):
    manifest, _ = _split(tmp_path)
    known = manifest[manifest["subject"] != ""]
    assert known.groupby("subject")["split"].nunique().max() == 1
    assert manifest.groupby("sha1")["split"].nunique().max() == 1
    assert set(manifest["split"]) == {"train", "valid", "test"}
    for split in ("train", "valid", "test"):
        assert set(manifest.loc[manifest["split"] == split, "label"]) == {0, 1, 2, 3}


def test_arrays_match_manifest_and_validation_is_not_train(tmp_path):
    manifest, out = _split(tmp_path)
    arrays = {}
    for split in ("train", "valid", "test"):
        x = np.load(out / f"X_{split}.npy", allow_pickle=False)
        y = np.load(out / f"y_{split}.npy", allow_pickle=False)
        assert x.dtype == np.uint8 and x.shape[1:] == (16, 16, 3) and y.dtype == np.int64
        assert list(y) == manifest.loc[manifest["split"] == split, "label"].tolist()
        arrays[split] = x
    assert arrays["valid"].shape != arrays["train"].shape or not np.array_equal(arrays["valid"], arrays["train"])
    train_rows = {hashlib.sha1(r.tobytes()).hexdigest() for r in arrays["train"]}
    assert not train_rows & {hashlib.sha1(r.tobytes()).hexdigest() for r in arrays["valid"]}
    assert abs((manifest["split"] == "test").mean() - 0.2) < 0.1


def test_same_seed_same_bytes(tmp_path):
    _split(tmp_path, out="a")
    _split(tmp_path, out="b")
    for name in ("X_train.npy", "y_test.npy", "X_valid.npy", "manifest.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    _split(tmp_path, out="c", seed=1)
    assert (tmp_path / "a" / "y_test.npy").read_bytes() != (tmp_path / "c" / "y_test.npy").read_bytes() or \
        (tmp_path / "a" / "X_test.npy").read_bytes() != (tmp_path / "c" / "X_test.npy").read_bytes()


def test_image_level_split_by_switch(tmp_path):
    manifest, _ = _split(tmp_path, cfg=SplitConfig(by_subject=False))
    known = manifest[manifest["subject"] != ""]
    assert known.groupby("subject")["split"].nunique().max() > 1  # the original's leakage, on request
    assert manifest.groupby("sha1")["split"].nunique().max() == 1  # duplicates still kept together


def test_too_few_subjects_fails_clearly(tmp_path):
    with pytest.raises(SplitError, match="Angry"):
        _split(tmp_path, subjects=2, per_subject=3, duplicates=False)


def test_groups_merge_subjects_sharing_an_image():
    groups = group_ids(["a", "b", "", "c"], ["h1", "h1", "h2", "h3"], by_subject=True)
    assert groups[0] == groups[1] and len(set(groups)) == 3
