import numpy as np
import pandas as pd
import pytest
from conftest import LABELS
from PIL import Image

from fer_age.config import CropConfig
from fer_age.crop import NoUsableImagesError, load_image, run_crop
from fer_age.detect import Face, HaarDetector, NoDetector, crop_face


def _face_like(size=(60, 40)) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


@pytest.fixture
def bad_dataset(tmp_path):
    """One file of every awkward kind, in study and non-study emotion folders."""
    root = tmp_path / "raw" / "BAD"
    angry, sad, disgust = root / "BAD_Anger", root / "sadness", root / "BAD_Disgust"
    for folder in (angry, sad, disgust):
        folder.mkdir(parents=True)
    _face_like().save(angry / "plain.png")
    (angry / "empty.jpg").write_bytes(b"")
    good_jpeg = angry / "good.jpg"
    _face_like().save(good_jpeg, quality=90)
    (angry / "truncated.jpg").write_bytes(good_jpeg.read_bytes()[:200])
    (angry / "not_really.png").write_text("this is text, not an image")
    _face_like().convert("CMYK").save(angry / "cmyk.jpg")
    Image.fromarray(np.arange(40 * 60, dtype=np.uint16).reshape(40, 60) * 20).save(sad / "deep16.png")
    Image.fromarray(np.full((40, 60), 4000, np.uint16)).save(sad / "deep16.tif")
    rgba = _face_like().convert("RGBA")
    rgba.putalpha(0)
    rgba.save(sad / "transparent.png")
    _face_like().convert("L").save(sad / "gray.bmp")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    _face_like((60, 40)).save(sad / "rotated.jpg", exif=exif)
    Image.new("RGB", (8000, 8000), (120, 90, 80)).save(sad / "huge.jpg", quality=50)
    (sad / "notes.txt").write_text("not an image type")
    _face_like().save(disgust / "d.png")
    return root


def test_every_bad_file_gets_a_status_row(bad_dataset, tmp_path):
    out = tmp_path / "cropped"
    report = run_crop(bad_dataset, out, "BAD", LABELS, CropConfig(detectors=["none"]), [NoDetector()])
    status = dict(zip(report["source"].map(lambda s: s.split("/")[-1]), report["status"]))
    assert status["empty.jpg"] == "unreadable"
    assert status["truncated.jpg"] == "unreadable"
    assert status["not_really.png"] == "unreadable"
    assert status["notes.txt"] == "not_an_image"
    assert status["d.png"] == "excluded_emotion"
    for name in ("plain.png", "good.jpg", "cmyk.jpg", "deep16.png", "deep16.tif", "transparent.png", "gray.bmp",
                 "rotated.jpg", "huge.jpg"):
        assert status[name] == "cropped", name
    assert len(report) == sum(1 for p in bad_dataset.rglob("*") if p.is_file())  # nothing silently dropped
    written = pd.read_csv(out / "crop_report.csv")
    assert len(written) == len(report)
    for output in report.loc[report["status"] == "cropped", "output"]:
        assert (out / output).is_file()
    assert (out / "BAD_Angry_cropped").is_dir() and (out / "BAD_Sad_cropped").is_dir()


def test_loader_conversions(bad_dataset):
    sad = bad_dataset / "sadness"
    assert load_image(sad / "rotated.jpg").shape == (60, 40, 3)  # EXIF orientation applied
    deep = load_image(sad / "deep16.png")
    assert deep.dtype == np.uint8 and deep.shape == (40, 60, 3) and deep.max() > 100
    assert load_image(sad / "transparent.png").min() == 255  # transparent composited on white
    assert load_image(bad_dataset / "BAD_Anger" / "cmyk.jpg").shape == (40, 60, 3)


def test_dataset_with_nothing_usable_fails_clearly(tmp_path):
    folder = tmp_path / "raw" / "EMPTY" / "EMPTY_Happy"
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_bytes(b"")
    with pytest.raises(NoUsableImagesError, match="EMPTY"):
        run_crop(tmp_path / "raw" / "EMPTY", tmp_path / "out", "EMPTY", LABELS, CropConfig(), [NoDetector()])
    assert (tmp_path / "out" / "crop_report.csv").is_file()


def test_no_face_policy(tmp_path):
    folder = tmp_path / "raw" / "N" / "N_Happy"
    folder.mkdir(parents=True)
    Image.new("RGB", (120, 120), (90, 140, 200)).save(folder / "sky.png")
    _face_like().save(folder / "noise.png")
    haar = HaarDetector(None)
    kept = run_crop(tmp_path / "raw" / "N", tmp_path / "k", "N", LABELS, CropConfig(no_face="keep_full"), [haar])
    assert set(kept["status"]) == {"no_face_kept_full"}
    with pytest.raises(NoUsableImagesError):
        run_crop(tmp_path / "raw" / "N", tmp_path / "s", "N", LABELS, CropConfig(no_face="skip"), [haar])


def test_margin_and_alignment():
    image = np.zeros((100, 100, 3), np.uint8)
    face = Face((40, 40, 20, 20), 0.99, (42.0, 45.0), (58.0, 55.0))
    assert crop_face(image, face, 0.0, False).shape == (20, 20, 3)
    assert crop_face(image, face, 0.5, False).shape == (40, 40, 3)
    assert crop_face(image, face, 0.0, True).shape == (20, 20, 3)
