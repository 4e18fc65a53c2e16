"""Crop stage: every raw entry gets one report row, every usable row one file, whatever the input."""

import filecmp
import itertools
import os
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import LABELS
from PIL import Image

from fer_age.config import CropConfig, DatasetConfig
from fer_age.contracts import USABLE, Status
from fer_age.faces.cropping import Face, choose_face, clip_face, crop_face
from fer_age.faces.crops import NoUsableImagesError, crop_dataset, write_report
from fer_age.faces.detection import HaarDetector, MtcnnDetector, NoDetector
from fer_age.faces.formats import discover
from fer_age.faces.images import load_image
from fer_age.faces.synthetic import generate_dataset

_SEEDS = itertools.count()


def _noise(size=(60, 40)) -> Image.Image:
    """Random pixels, different at each call (byte-identical images are duplicates)."""
    rng = np.random.default_rng(next(_SEEDS))
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def _crop(root, out, cfg=None, detectors=None, name="BAD"):
    items = discover(root, name, DatasetConfig(raw=name, age_group="adult"), LABELS)
    return crop_dataset(items, out, name, cfg or CropConfig(detectors=["none"]), detectors or [NoDetector()])


@pytest.fixture
def bad_dataset(tmp_path):
    """One file of every awkward kind, in study and non-study emotion folders, plus links and root files."""
    root = tmp_path / "raw" / "BAD"
    angry, sad, disgust = root / "BAD_Anger", root / "sadness", root / "BAD_Disgust"
    for folder in (angry, sad, disgust):
        folder.mkdir(parents=True)
    _noise().save(angry / "plain.png")
    (angry / "empty.jpg").write_bytes(b"")
    good_jpeg = angry / "good.jpg"
    _noise().save(good_jpeg, quality=90)
    (angry / "truncated.jpg").write_bytes(good_jpeg.read_bytes()[:200])
    (angry / "not_really.png").write_text("this is text, not an image")
    _noise().convert("CMYK").save(angry / "cmyk.jpg")
    for name in ("dup.jpg", "dup.JPG", "dup.Jpg", "dup.png"):
        _noise().save(angry / name, format="PNG" if name.endswith("png") else "JPEG")
    Image.fromarray(np.arange(40 * 60, dtype=np.uint16).reshape(40, 60) * 20).save(sad / "deep16.png")
    Image.fromarray(np.full((40, 60), 4000, np.uint16)).save(sad / "deep16.tif")
    rgba = _noise().convert("RGBA")
    rgba.putalpha(0)
    rgba.save(sad / "transparent.png")
    _noise().convert("L").save(sad / "gray.bmp")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    _noise((60, 40)).save(sad / "rotated.jpg", exif=exif)
    Image.new("RGB", (8000, 8000), (120, 90, 80)).save(sad / "huge.jpg", quality=50)
    _noise((20, 30)).save(sad / "tiny.png")
    (sad / "notes.txt").write_text("not an image type")
    _noise().save(disgust / "d.png")
    _noise().save(root / "at_the_root.png")
    os.symlink(root / "gone.png", sad / "dangling.png")
    os.symlink(sad / "gray.bmp", angry / "link_to_gray.bmp")
    os.symlink(root, sad / "loop")
    return root


def test_every_entry_gets_one_row_and_every_usable_row_one_file(bad_dataset, tmp_path):
    out = tmp_path / "cropped"
    report = _crop(bad_dataset, out)
    write_report(report, out, "BAD", 1.0)
    status = dict(zip(report["source"].map(lambda s: s.split("/")[-1]), report["status"]))
    for name in ("empty.jpg", "truncated.jpg", "not_really.png"):
        assert status[name] == Status.UNREADABLE, name
    assert status["notes.txt"] == Status.NOT_AN_IMAGE
    assert status["d.png"] == Status.EXCLUDED_EMOTION
    assert status["at_the_root.png"] == Status.UNLABELLED
    assert status["dangling.png"] == Status.BROKEN_LINK and status["loop"] == Status.BROKEN_LINK
    assert status["tiny.png"] == Status.TOO_SMALL
    for name in (
        "plain.png",
        "good.jpg",
        "cmyk.jpg",
        "deep16.png",
        "deep16.tif",
        "transparent.png",
        "rotated.jpg",
        "huge.jpg",
        "dup.jpg",
        "dup.JPG",
        "dup.Jpg",
        "dup.png",
    ):
        assert status[name] == Status.CROPPED, name
    # a link from the Anger folder to a Sad image: one image with two labels, so neither is used
    assert status["link_to_gray.bmp"] == status["gray.bmp"] == Status.CONFLICTING_LABELS
    entries = sum(
        len(files) + sum(os.path.islink(os.path.join(d, x)) for x in dirs) for d, dirs, files in os.walk(bad_dataset)
    )
    assert len(report) == entries == report["source"].nunique()  # one row per entry, nothing dropped
    usable = report[report["status"].isin(USABLE)]
    assert usable["output"].is_unique and len(usable) == len(list(out.rglob("*.png")))
    assert all((out / o).is_file() for o in usable["output"])
    written = pd.read_csv(out / "crop_report.csv")
    assert len(written) == len(report) and written["label"].dropna().map(float.is_integer).all()


def test_loader_conversions_and_pixel_limit(bad_dataset):
    sad = bad_dataset / "sadness"
    assert load_image(sad / "rotated.jpg").shape == (60, 40, 3)  # EXIF orientation applied
    deep = load_image(sad / "deep16.png")
    assert deep.dtype == np.uint8 and deep.shape == (40, 60, 3) and deep.max() > 100
    assert load_image(sad / "transparent.png").min() == 255  # transparent composited on white
    assert load_image(bad_dataset / "BAD_Anger" / "cmyk.jpg").shape == (40, 60, 3)
    assert load_image(sad / "huge.jpg").shape == (8000, 8000, 3)  # 64 MP: under the default limit
    with pytest.raises(ValueError, match="crop.max_pixels"):
        load_image(sad / "huge.jpg", max_pixels=10_000_000)


def test_dataset_with_nothing_usable_fails_clearly(tmp_path):
    folder = tmp_path / "raw" / "EMPTY" / "EMPTY_Happy"
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_bytes(b"")
    report = _crop(tmp_path / "raw" / "EMPTY", tmp_path / "out", name="EMPTY")
    with pytest.raises(NoUsableImagesError, match="EMPTY"):
        write_report(report, tmp_path / "out", "EMPTY", 1.0)
    assert (tmp_path / "out" / "crop_report.csv").is_file()


def test_no_face_policy(tmp_path):
    folder = tmp_path / "raw" / "N" / "N_Happy"
    folder.mkdir(parents=True)
    Image.new("RGB", (120, 120), (90, 140, 200)).save(folder / "sky.png")
    _noise().save(folder / "noise.png")
    haar = HaarDetector(None)
    kept = _crop(tmp_path / "raw" / "N", tmp_path / "k", CropConfig(no_face="keep_full"), [haar], name="N")
    assert set(kept["status"]) == {Status.NO_FACE_KEPT_FULL} and kept["message"].str.contains("haar").all()
    skipped = _crop(tmp_path / "raw" / "N", tmp_path / "s", CropConfig(no_face="skip"), [haar], name="N")
    assert set(skipped["status"]) == {Status.NO_FACE_SKIPPED} and not list((tmp_path / "s").rglob("*.png"))


def test_detections_are_validated_before_use():
    face = Face((10, 5, 0, 12), 0.99)
    assert clip_face(face, 80, 108, 24)[0] is None and "no area" in clip_face(face, 80, 108, 24)[1]
    clipped, _ = clip_face(Face((-10, -5, 60, 50), 0.9), 80, 108, 24)
    assert clipped.box == (0, 0, 50, 45)
    outside, reason = clip_face(Face((100, 70, 40, 40), 0.9), 80, 108, 24)
    assert outside is None and "below crop.min_face" in reason
    best, _ = choose_face([Face((0, 0, 0, 0), 0.99), Face((10, 10, 30, 30), 0.95)], 80, 108, 24)
    assert best.box == (10, 10, 30, 30)  # the most confident detection was unusable


@dataclass
class ZeroBoxDetector:
    """A detector that returns what MTCNN returned on small real photos: a box of zero width."""

    name = "zerobox"

    def detect(self, images):
        return [[Face((3, 2, 0, 20), 0.99)] for _ in images]


def test_a_rejected_detection_falls_through_to_the_next_detector(tmp_path):
    folder = tmp_path / "raw" / "Z" / "Z_Happy"
    folder.mkdir(parents=True)
    _noise((108, 80)).save(folder / "small.jpg")
    report = _crop(tmp_path / "raw" / "Z", tmp_path / "a", detectors=[ZeroBoxDetector(), NoDetector()], name="Z")
    row = report.iloc[0]
    assert (row["status"], row["detector"]) == (Status.CROPPED, "none") and "zerobox: box 0x20" in row["message"]
    report = _crop(tmp_path / "raw" / "Z", tmp_path / "b", detectors=[ZeroBoxDetector()], name="Z")
    assert report.iloc[0]["status"] == Status.NO_FACE_KEPT_FULL and "no area" in report.iloc[0]["message"]


def test_margin_and_alignment_level_the_eyes():
    image = np.zeros((100, 100, 3), np.uint8)
    left, right = (40, 44), (60, 56)  # eyes on a 31-degree slope
    for x, y in (left, right):
        cv2.circle(image, (x, y), 2, (255, 255, 255), -1)
    face = Face((30, 30, 40, 40), 0.99, tuple(map(float, left)), tuple(map(float, right)))
    assert crop_face(image, face, 0.0, False).shape == (40, 40, 3)
    assert crop_face(image, face, 0.5, False).shape == (80, 80, 3)
    aligned = crop_face(image, face, 0.0, True)[..., 0]
    rows = [np.nonzero(aligned[:, :20].max(axis=1))[0].mean(), np.nonzero(aligned[:, 20:].max(axis=1))[0].mean()]
    assert abs(rows[0] - rows[1]) <= 1.0  # level after alignment (was 12 px apart)
    tilted = crop_face(image, face, 0.0, False)[..., 0]
    assert abs(np.nonzero(tilted[:, :20].max(axis=1))[0].mean() - np.nonzero(tilted[:, 20:].max(axis=1))[0].mean()) > 8


def test_results_do_not_depend_on_the_batch_size(tmp_path):
    root = tmp_path / "raw" / "S"
    generate_dataset(root, "S", "child", LABELS, subjects=3, images_per_emotion=1, scene_size=160, seed=3)
    small = root / "S_Happy" / "S_s00_Happy_0.png"  # other shapes in the batch, as in real data
    cv2.imwrite(str(small), cv2.resize(cv2.imread(str(small)), (110, 90)))
    reports = []
    for batch in (1, 5):
        cfg = CropConfig(detectors=["mtcnn"], batch_size=batch)
        reports.append(_crop(root, tmp_path / f"b{batch}", cfg, [MtcnnDetector(0.8, batch)], name="S"))
    pd.testing.assert_frame_equal(reports[0], reports[1])
    files = [str(p.relative_to(tmp_path / "b1")) for p in (tmp_path / "b1").rglob("*.png")]
    assert files and not filecmp.cmpfiles(tmp_path / "b1", tmp_path / "b5", files, shallow=False)[1]


def test_formats_pillow_reads_are_read_and_others_say_what_they_need(tmp_path):
    folder = tmp_path / "FMT" / "FMT_Happy"
    folder.mkdir(parents=True)
    _noise().save(folder / "a.gif")
    _noise().save(folder / "b.webp")
    (folder / "c.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    Image.fromarray(np.linspace(0, 1, 60 * 40, dtype=np.float32).reshape(40, 60), "F").save(folder / "d.tif")
    items = {
        i.source.split("/")[-1]: i
        for i in discover(tmp_path / "FMT", "FMT", DatasetConfig(raw="FMT", age_group="adult"), LABELS)
    }
    assert items["a.gif"].status == items["b.webp"].status == items["d.tif"].status == ""
    assert items["c.heic"].status == Status.NOT_AN_IMAGE and "pillow-heif" in items["c.heic"].message
    assert load_image(folder / "a.gif").shape == (40, 60, 3)
    floats = load_image(folder / "d.tif")  # a float TIFF in [0, 1] spans the grey range, not black
    assert floats.min() == 0 and floats.max() == 255


def test_crop_max_pixels_governs_pillows_own_limit(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    _noise((300, 200)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow alone would refuse this image as a bomb
    assert load_image(path, max_pixels=1_000_000).shape == (200, 300, 3)
    with pytest.raises(ValueError, match="crop.max_pixels"):
        load_image(path, max_pixels=50_000)
    assert Image.MAX_IMAGE_PIXELS == 1000  # restored


def test_a_full_disk_is_an_os_error_naming_the_file(tmp_path):
    import errno

    from fer_age.faces.crops import _save

    target = tmp_path / "crop.png"
    target.symlink_to("/dev/full")  # every write fails with ENOSPC
    with pytest.raises(OSError) as err:
        _save(np.zeros((30, 30, 3), np.uint8), target)
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(target)
