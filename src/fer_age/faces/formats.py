"""Raw datasets in the layouts they are distributed in: what every entry under a raw folder is.

``discover`` walks every entry under ``data/raw/<raw>/`` (files, symbolic links, broken links) and
returns one :class:`RawItem` each: a candidate image with its emotion, label, subject and age
group, or a status saying why it is not used. Layouts (``datasets.<DS>.layout``):

- ``folders``: ``<NAME>_<Emotion>/`` or ``<Emotion>/`` folders (the original study's layout);
- ``ckplus``: CK+ as distributed, ``cohn-kanade-images/<S>/<seq>/*.png`` with
  ``Emotion/<S>/<seq>/*_emotion.txt`` label files; the last ``peak_frames`` frames take the label;
- ``pattern``: a regex over the relative path with groups ``emotion``, ``subject``, ``age``;
- ``csv``: a labels file with columns ``path, emotion[, subject, age_group]``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import pandas as pd

from fer_age.config import ConfigError, DatasetConfig
from fer_age.contracts import MissingInputError, Status
from fer_age.emotions import CKPLUS_CODES, KNOWN_EMOTIONS, canonical_emotion
from fer_age.errors import FerAgeError
from fer_age.faces.entries import RawItem, mark_duplicates, printable, walk

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp"})  # Pillow reads
NEEDS_PLUGIN = {".heic": "pillow-heif", ".heif": "pillow-heif", ".avif": "pillow-avif-plugin"}
CKPLUS_IMAGES, CKPLUS_LABELS = "cohn-kanade-images", "Emotion"


@dataclass(frozen=True)
class Annotation:
    """What a layout says about one image file."""

    emotion: str
    subject: str = ""
    age_group: str = ""


@dataclass
class Reading:
    """What a layout reader makes of a raw folder's regular files."""

    annotations: dict[str, Annotation | str] = field(default_factory=dict)  # image -> labels, or why none
    metadata: dict[str, str] = field(default_factory=dict)  # files the layout reads (labels files) -> message
    missing: dict[str, str] = field(default_factory=dict)  # listed in a labels file but absent -> message


# A layout reader gets the raw folder, its regular files (relative, sorted), the dataset config and name.
LayoutReader = Callable[[Path, list[str], DatasetConfig, str], Reading]


def is_image(source: str) -> bool:
    return PurePosixPath(source).suffix.lower() in IMAGE_EXTENSIONS


def folder_emotion(folder: str) -> str:
    """The canonical emotion of a ``<NAME>_<Emotion>[_cropped]`` or ``<Emotion>`` folder."""
    name = re.sub(r"_cropped$", "", folder, flags=re.IGNORECASE)
    if canonical_emotion(name) in KNOWN_EMOTIONS or "_" not in name:
        return canonical_emotion(name)
    return canonical_emotion(name.rsplit("_", 1)[-1])


def read_folders(root: Path, files: list[str], ds: DatasetConfig, name: str):
    reading = Reading()
    for source in files:
        parts = PurePosixPath(source).parts
        reading.annotations[source] = (
            Annotation(folder_emotion(parts[0]))
            if len(parts) > 1
            else "at the top of the raw folder, outside any <NAME>_<Emotion>/ folder"
        )
    return reading


def read_ckplus(root: Path, files: list[str], ds: DatasetConfig, name: str):
    reading = Reading()
    annotations = reading.annotations
    sequence_emotion: dict[tuple[str, str], str] = {}
    frames: dict[tuple[str, str], list[str]] = defaultdict(list)
    for source in files:
        parts = PurePosixPath(source).parts
        if len(parts) == 4 and parts[0] == CKPLUS_LABELS and parts[3].endswith("_emotion.txt"):
            emotion, message = _ckplus_label(root / source)
            if emotion:
                sequence_emotion[parts[1], parts[2]] = emotion
            reading.metadata[source] = message
        elif len(parts) == 4 and parts[0] == CKPLUS_IMAGES and is_image(source):
            frames[parts[1], parts[2]].append(source)
        elif is_image(source):
            annotations[source] = f"not in {CKPLUS_IMAGES}/<subject>/<sequence>/ (layout 'ckplus')"
    for (subject, sequence), sources in frames.items():
        label = sequence_emotion.get((subject, sequence))
        ordered = sorted(sources)
        for i, source in enumerate(ordered):
            if label is None:
                annotations[source] = f"sequence {subject}/{sequence} has no emotion label file"
            elif i < len(ordered) - ds.peak_frames:
                annotations[source] = Status.NOT_PEAK_FRAME
            else:
                annotations[source] = Annotation(label, subject)
    return reading


def _ckplus_label(path: Path) -> tuple[str, str]:
    """The emotion in a CK+ ``*_emotion.txt`` file and a message for the report."""
    try:
        value = float(path.read_text().split()[0])
    except (OSError, ValueError, IndexError, UnicodeDecodeError) as err:
        return "", f"emotion label file unreadable ({type(err).__name__}); its sequence is unlabelled"
    if not value.is_integer() or int(value) not in CKPLUS_CODES:
        return "", f"emotion code {value:g} is not a CK+ code (0-7); its sequence is unlabelled"
    return CKPLUS_CODES[int(value)], f"emotion label: {int(value)} = {CKPLUS_CODES[int(value)]}"


def read_pattern(root: Path, files: list[str], ds: DatasetConfig, name: str):
    pattern = re.compile(ds.pattern or "")
    annotations: dict[str, Annotation | str] = {}
    for source in filter(is_image, files):
        match = pattern.search(source)
        if match is None:
            annotations[source] = f"does not match datasets.{name}.pattern"
            continue
        groups = {k: v for k, v in match.groupdict().items() if v is not None}
        emotion = _decode(groups.get("emotion", ""), ds.emotion_codes, f"datasets.{name}.emotion_codes")
        age = _decode(groups["age"], ds.age_codes, f"datasets.{name}.age_codes") if "age" in groups else ""
        problem = next((v for v in (emotion, age) if v.startswith("code ")), None)
        annotations[source] = problem or Annotation(emotion, groups.get("subject", ""), age)
    return Reading(annotations)


def _decode(code: str, codes: dict[str, str], key: str) -> str:
    if not codes:
        return code
    return codes.get(code, f"code '{code}' is not in {key}")


def read_csv(root: Path, files: list[str], ds: DatasetConfig, name: str):
    labels_file = ds.labels_file or ""
    path = root / labels_file
    if not path.is_file():
        raise MissingInputError(f"datasets.{name}.labels_file: {path} does not exist")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError) as err:
        raise FerAgeError(f"datasets.{name}.labels_file {path} is not a readable CSV file: {err}") from None
    missing = {"path", "emotion"} - set(table.columns)
    if missing:
        raise FerAgeError(
            f"datasets.{name}.labels_file {path} lacks the column(s) {', '.join(sorted(missing))} "
            f"(has: {', '.join(table.columns)})"
        )
    table["path"] = [str(PurePosixPath(p.strip().replace("\\", "/"))) for p in table["path"]]
    annotations: dict[str, Annotation | str] = {}
    for source, rows in table.groupby("path", sort=True):
        records = {
            (r.get("emotion", ""), r.get("subject", ""), r.get("age_group", "")) for r in rows.to_dict("records")
        }
        if len(records) > 1:
            annotations[source] = f"listed {len(rows)} times in {labels_file} with different values"
            continue
        emotion, subject, age = records.pop()
        annotations[source] = Annotation(emotion.strip(), subject.strip(), age.strip())
    present = set(files)
    reading = Reading(metadata={str(PurePosixPath(labels_file)): "labels file (layout 'csv')"})
    for source, annotation in annotations.items():
        if source in present:
            reading.annotations[source] = annotation
        else:
            reading.missing[source] = f"listed in {labels_file}, but there is no such file"
    for source in files:
        if is_image(source) and source not in annotations:
            reading.annotations[source] = f"not listed in {labels_file}"
    return reading


LAYOUT_READERS: dict[str, LayoutReader] = {
    "folders": read_folders,
    "ckplus": read_ckplus,
    "pattern": read_pattern,
    "csv": read_csv,
}


def subject_id(filename: str, pattern: str | None) -> str:
    """The subject id in ``filename`` by ``pattern`` (its ``subject`` group, else group 1), or ''."""
    if pattern is None:
        return ""
    match = re.search(pattern, filename)
    if match is None:
        return ""
    return match.groupdict().get("subject") or match.group(1) or ""


def discover(root: Path, name: str, ds: DatasetConfig, labels: list[str]) -> list[RawItem]:
    """One item per entry under the raw folder ``root``, sorted by source, each with a label or a status."""
    if not root.is_dir():
        raise MissingInputError(
            f"raw folder '{root}' of dataset '{name}' does not exist: put the dataset there in its "
            f"'{ds.layout}' layout (see docs/datasets.md) and run `dvc add {root}`"
        )
    files, others = walk(root)
    reading = LAYOUT_READERS[ds.layout](root, files, ds, name)
    wanted = {canonical_emotion(label): i for i, label in enumerate(labels)}
    items = [RawItem(s, root / s, status=status, message=message) for s, (status, message) in others.items()]
    for source in files:
        item = RawItem(source, root / source)
        if source in reading.metadata:
            items.append(replace(item, status=Status.METADATA, message=reading.metadata[source]))
        elif not is_image(source):
            suffix = PurePosixPath(source).suffix.lower() or "(none)"
            message = (
                f"{suffix} images need the {NEEDS_PLUGIN[suffix]} plugin, which the pipeline does not "
                "install: convert them to PNG or JPEG"
                if suffix in NEEDS_PLUGIN
                else f"extension {suffix} is not an image type"
            )
            items.append(replace(item, status=Status.NOT_AN_IMAGE, message=message))
        else:
            items.append(_label(item, reading.annotations.get(source, "no label"), ds, name, wanted))
    items += [RawItem(s, root / s, status=Status.MISSING, message=m) for s, m in reading.missing.items()]
    return mark_duplicates(sorted((replace(i, source=printable(i.source)) for i in items), key=lambda i: i.source))


def _label(
    item: RawItem, annotation: Annotation | str, ds: DatasetConfig, name: str, wanted: dict[str, int]
) -> RawItem:
    if annotation == Status.NOT_PEAK_FRAME:
        return replace(
            item, status=Status.NOT_PEAK_FRAME, message=f"before the last {ds.peak_frames} frames of its sequence"
        )
    if isinstance(annotation, str):
        return replace(item, status=Status.UNLABELLED, message=annotation)
    emotion = canonical_emotion(annotation.emotion)
    subject = annotation.subject or subject_id(PurePosixPath(item.source).name, ds.subject_pattern)
    age = annotation.age_group or ds.age_group or ""
    item = replace(item, emotion=emotion, subject=subject, age_group=age, label=wanted.get(emotion))
    if item.label is None:
        return replace(item, status=Status.EXCLUDED_EMOTION, message=f"emotion '{emotion}' is not in params labels")
    if not age:
        return replace(
            item,
            status=Status.UNLABELLED,
            message=f"no age group (set datasets.{name}.age_group or give one per image)",
        )
    if ds.age_groups is not None and age not in ds.age_groups:
        return replace(
            item, status=Status.EXCLUDED_AGE_GROUP, message=f"age group '{age}' is not in datasets.{name}.age_groups"
        )
    return item


def check_labels(items: list[RawItem], labels: list[str], name: str) -> None:
    """Every label must have at least one candidate image, else an error naming 'labels' and the dataset."""
    counts: dict[int | None, int] = defaultdict(int)
    for item in items:
        if not item.status:
            counts[item.label] += 1
    empty = [label for i, label in enumerate(labels) if counts[i] == 0]
    if empty:
        found = sorted({i.emotion for i in items if i.emotion})
        raise ConfigError(
            f"'labels' lists {', '.join(empty)}, but dataset '{name}' has no image of it "
            f"(emotions found: {', '.join(found) or 'none'}); remove it from 'labels' or fix "
            f"datasets.{name}"
        )
