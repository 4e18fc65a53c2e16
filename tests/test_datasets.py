"""Raw layouts as the datasets are distributed: every entry gets one item, with labels or a status."""

import os
import shutil
import zlib

import pytest
import yaml
from conftest import LABELS
from PIL import Image

from fer_age.config import ConfigError, DatasetConfig
from fer_age.contracts import Status
from fer_age.faces.formats import check_labels, discover

FACES_PATTERN = r"^(?P<subject>\d+)_(?P<age>[ymo])_[mf]_(?P<emotion>[adfhns])_[ab]\.jpg$"
FACES_EMOTIONS = {"a": "Angry", "d": "Disgust", "f": "Fear", "h": "Happy", "n": "Neutral", "s": "Sad"}
FACES_AGES = {"y": "adult", "m": "adult", "o": "older"}


def _image(path, size=(40, 40)):
    """A plain image whose colour depends on its path: no two files share their bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    code = zlib.crc32(str(path).encode())
    Image.new("RGB", size, (code & 255, code >> 8 & 255, code >> 16 & 255)).save(path)


def _by_source(items):
    return {item.source: item for item in items}


def ckplus_tree(root, subjects=("S005", "S010"), frames=5):
    """CK+ as distributed: image sequences, emotion label files for some sequences, a landmarks folder."""
    codes = {"001": 3, "002": 1, "003": None, "004": 4, "005": 5, "006": 6}  # 003: unlabelled
    for s in subjects:
        for seq, code in codes.items():
            for f in range(1, frames + 1):
                _image(root / "cohn-kanade-images" / s / seq / f"{s}_{seq}_{f:08d}.png")
            if code is not None:
                label = root / "Emotion" / s / seq / f"{s}_{seq}_{frames:08d}_emotion.txt"
                label.parent.mkdir(parents=True, exist_ok=True)
                label.write_text(f"   {code:.7e}\n")
        (root / "Landmarks" / s).mkdir(parents=True, exist_ok=True)
        (root / "Landmarks" / s / "landmarks.txt").write_text("1 2\n")
    return root


def test_ckplus_layout(tmp_path):
    root = ckplus_tree(tmp_path / "CK")
    items = discover(root, "CK", DatasetConfig(raw="CK", layout="ckplus", age_group="adult", peak_frames=2), LABELS)
    by = _by_source(items)
    last = by["cohn-kanade-images/S005/002/S005_002_00000005.png"]
    assert (last.emotion, last.label, last.subject, last.age_group, last.status) == ("Angry", 0, "S005", "adult", "")
    assert by["cohn-kanade-images/S005/002/S005_002_00000004.png"].status == ""  # peak_frames=2
    assert by["cohn-kanade-images/S005/002/S005_002_00000003.png"].status == Status.NOT_PEAK_FRAME
    assert by["cohn-kanade-images/S005/001/S005_001_00000005.png"].status == Status.EXCLUDED_EMOTION  # disgust
    assert by["cohn-kanade-images/S010/003/S010_003_00000005.png"].status == Status.UNLABELLED
    assert "no emotion label file" in by["cohn-kanade-images/S010/003/S010_003_00000005.png"].message
    assert by["Emotion/S005/002/S005_002_00000005_emotion.txt"].status == Status.METADATA
    assert by["Landmarks/S005/landmarks.txt"].status == Status.NOT_AN_IMAGE
    assert len(items) == sum(len(files) for _, _, files in os.walk(root))  # one item per entry
    candidates = [i for i in items if not i.status]
    assert {i.emotion for i in candidates} == {"Angry", "Fear", "Happy", "Sad"} and len(candidates) == 2 * 4 * 2


def test_ckplus_bad_label_file_leaves_the_sequence_unlabelled(tmp_path):
    root = ckplus_tree(tmp_path / "CK", subjects=("S005",), frames=3)
    (root / "Emotion/S005/002/S005_002_00000003_emotion.txt").write_text("9.0\n")
    by = _by_source(discover(root, "CK", DatasetConfig(raw="CK", layout="ckplus", age_group="adult"), LABELS))
    assert "not a CK+ code" in by["Emotion/S005/002/S005_002_00000003_emotion.txt"].message
    assert by["cohn-kanade-images/S005/002/S005_002_00000003.png"].status == Status.UNLABELLED


def test_faces_pattern_with_per_image_age_groups(tmp_path):
    root = tmp_path / "FACES"
    for subject, age in (("004", "y"), ("066", "m"), ("140", "o")):
        for code in "adfhns":
            _image(root / f"{subject}_{age}_f_{code}_a.jpg")
    _image(root / "readme.jpg")
    ds = DatasetConfig(
        raw="FACES", layout="pattern", pattern=FACES_PATTERN, emotion_codes=FACES_EMOTIONS, age_codes=FACES_AGES
    )
    by = _by_source(discover(root, "FACES", ds, LABELS))
    assert (by["140_o_f_h_a.jpg"].emotion, by["140_o_f_h_a.jpg"].age_group, by["140_o_f_h_a.jpg"].subject) == (
        "Happy",
        "older",
        "140",
    )
    assert by["066_m_f_s_a.jpg"].age_group == "adult"
    assert by["004_y_f_n_a.jpg"].status == Status.EXCLUDED_EMOTION
    assert by["readme.jpg"].status == Status.UNLABELLED and "pattern" in by["readme.jpg"].message
    older = DatasetConfig(
        raw="FACES",
        layout="pattern",
        pattern=FACES_PATTERN,
        emotion_codes=FACES_EMOTIONS,
        age_codes=FACES_AGES,
        age_groups=["older"],
    )
    kept = [i for i in discover(root, "FACES-OLDER", older, LABELS) if not i.status]
    assert {i.age_group for i in kept} == {"older"} and len(kept) == 4
    assert Status.EXCLUDED_AGE_GROUP in {i.status for i in discover(root, "FACES-OLDER", older, LABELS)}


def test_csv_layout(tmp_path):
    root = tmp_path / "NIMH"
    for name in ("a.png", "b.png", "sub/c.png", "unlisted.png"):
        _image(root / name)
    (root / "labels.csv").write_text(
        "path,emotion,subject,age_group\na.png,anger,p1,child\nb.png,Happy,p2,\n"
        "sub/c.png,sadness,p1,child\nmissing.png,Fear,p3,child\n"
    )
    ds = DatasetConfig(raw="NIMH", layout="csv", labels_file="labels.csv", age_group="adult")
    by = _by_source(discover(root, "NIMH", ds, LABELS))
    assert (by["a.png"].emotion, by["a.png"].subject, by["a.png"].age_group) == ("Angry", "p1", "child")
    assert by["b.png"].age_group == "adult"  # empty cell: the dataset's default
    assert by["sub/c.png"].emotion == "Sad"
    assert by["unlisted.png"].status == Status.UNLABELLED
    assert by["labels.csv"].status == Status.METADATA
    assert by["missing.png"].status == Status.MISSING


def test_csv_layout_errors_name_the_file(tmp_path):
    root = tmp_path / "X"
    _image(root / "a.png")
    (root / "labels.csv").write_text("file,label\na.png,Happy\n")
    with pytest.raises(Exception, match="labels.csv lacks the column"):
        discover(root, "X", DatasetConfig(raw="X", layout="csv", labels_file="labels.csv", age_group="adult"), LABELS)


def test_folders_layout_reports_every_kind_of_entry(tmp_path):
    root = tmp_path / "D"
    _image(root / "D_Happy" / "a.jpg")
    _image(root / "Happy" / "nested" / "b.png")
    _image(root / "top.jpg")
    (root / "D_Happy" / "notes.txt").write_text("x")
    os.symlink(root / "nowhere.jpg", root / "D_Happy" / "dangling.jpg")
    os.symlink(root / "D_Happy" / "a.jpg", root / "D_Happy" / "link.jpg")
    os.symlink(root, root / "D_Happy" / "loop")
    by = _by_source(discover(root, "D", DatasetConfig(raw="D", age_group="adult"), LABELS))
    assert by["D_Happy/a.jpg"].status == "" and by["Happy/nested/b.png"].status == ""
    assert by["D_Happy/link.jpg"].status == Status.DUPLICATE  # a link to a file is that file: used once
    assert by["top.jpg"].status == Status.UNLABELLED
    assert by["D_Happy/notes.txt"].status == Status.NOT_AN_IMAGE
    assert by["D_Happy/dangling.jpg"].status == Status.BROKEN_LINK
    assert by["D_Happy/loop"].status == Status.BROKEN_LINK
    assert len(by) == 7


def test_labels_without_images_or_aliases_fail_naming_labels(tmp_path):
    root = tmp_path / "D"
    _image(root / "D_Happy" / "a.jpg")
    _image(root / "D_Anger" / "b.jpg")
    items = discover(root, "D", DatasetConfig(raw="D", age_group="adult"), LABELS)
    with pytest.raises(ConfigError, match="'labels' lists Fear, Sad, but dataset 'D'"):
        check_labels(items, LABELS, "D")
    two = ["Angry", "Happy"]
    check_labels(discover(root, "D", DatasetConfig(raw="D", age_group="adult"), two), two, "D")


def test_byte_identical_images_are_used_once_and_never_with_two_labels(tmp_path):
    root = tmp_path / "DUP"
    for emotion in ("Angry", "Fear", "Happy", "Sad"):
        _image(root / f"DUP_{emotion}" / f"DUP_s1_{emotion}.png")
    shutil.copy(root / "DUP_Happy" / "DUP_s1_Happy.png", root / "DUP_Happy" / "DUP_s2_copy.png")  # same label
    shutil.copy(root / "DUP_Sad" / "DUP_s1_Sad.png", root / "DUP_Angry" / "DUP_s3_sad_as_angry.png")  # two labels
    items = _by_source(
        discover(root, "DUP", DatasetConfig(raw="DUP", age_group="adult", subject_pattern=r"_(s\d+)_"), LABELS)
    )
    assert items["DUP_Happy/DUP_s1_Happy.png"].status == ""
    copy = items["DUP_Happy/DUP_s2_copy.png"]
    assert copy.status == Status.DUPLICATE and copy.message == "same bytes as DUP_Happy/DUP_s1_Happy.png"
    for source in ("DUP_Sad/DUP_s1_Sad.png", "DUP_Angry/DUP_s3_sad_as_angry.png"):
        assert items[source].status == Status.CONFLICTING_LABELS, source
    assert "(Angry)" in items["DUP_Sad/DUP_s1_Sad.png"].message


def test_check_names_images_shared_by_two_datasets(tmp_path, monkeypatch, capsys):
    from fer_age.cli import main

    for name in ("KIDS", "ADULTS"):
        for emotion in LABELS:
            _image(tmp_path / "data" / "raw" / name / f"{name}_{emotion}" / f"{name}_s1_{emotion}.png")
    shutil.copy(  # one photo in both datasets
        tmp_path / "data/raw/KIDS/KIDS_Happy/KIDS_s1_Happy.png", tmp_path / "data/raw/ADULTS/ADULTS_Happy/ADULTS_s9.png"
    )
    params = {
        "labels": LABELS,
        "age_groups": ["child", "adult"],
        "datasets": {
            n: {"raw": n, "age_group": g, "subject_pattern": r"_(s\d+)"}
            for n, g in (("KIDS", "child"), ("ADULTS", "adult"))
        },
        "sample": {"datasets": {}},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "note: 1 images are in more than one dataset" in out
    assert "KIDS/KIDS_Happy/KIDS_s1_Happy.png = ADULTS/ADULTS_Happy/ADULTS_s9.png" in out
