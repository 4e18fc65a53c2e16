"""params.yaml validation: every value checked once, before any work; each error names its key."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from fer_age.config import (
    BASELINES,
    DETECTORS,
    HEADS,
    LAYOUTS,
    MAX_BOOTSTRAP_SAMPLES,
    MAX_IMG_SIZE,
    MAX_SEED,
    MIN_TRAIN_FRACTION,
    MONITORS,
    POOL_SELECTIONS,
    POOLS,
    SOUP_RECIPES,
    Config,
    ConfigError,
    DatasetConfig,
    check_name,
)
from fer_age.emotions import canonical_emotion
from fer_age.grouping import subjects_per_split
from fer_age.registry import MODEL_NAMES, ModelSpec, model_spec


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _in_range(value: float, low: float, high: float, key: str, open_low: bool = False) -> None:
    ok = (low < value if open_low else low <= value) and value <= high
    _check(ok, f"'{key}' is {value}; allowed: {'(' if open_low else '['}{low}, {high}]")


def _regex(pattern: str, key: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as err:
        raise ConfigError(f"'{key}' is not a valid regex: {err}") from None


def _relative_inside(path: str, key: str) -> None:
    pure = PurePosixPath(path.replace("\\", "/"))
    _check(
        not pure.is_absolute() and ".." not in pure.parts and str(pure) not in ("", "."),
        f"'{key}' must be a path inside the dataset's raw folder (no '..', not absolute), got {path!r}",
    )


def _validate_dataset(name: str, ds: DatasetConfig, age_groups: list[str]) -> None:
    key = f"datasets.{name}"
    check_name(name, "dataset")
    check_name(ds.raw, f"'{key}.raw' folder")
    _check(ds.layout in LAYOUTS, f"'{key}.layout' is '{ds.layout}'; choose one of {', '.join(LAYOUTS)}")
    groups = ", ".join(age_groups)
    if ds.age_group is not None:
        _check(ds.age_group in age_groups, f"'{key}.age_group' is '{ds.age_group}'; choose one of {groups}")
    for code, group in ds.age_codes.items():
        _check(group in age_groups, f"'{key}.age_codes.{code}' is '{group}'; choose one of {groups}")
    for i, group in enumerate(ds.age_groups or []):
        _check(group in age_groups, f"'{key}.age_groups[{i}]' is '{group}'; choose one of {groups}")
    if ds.subject_pattern is not None:
        _check(
            _regex(ds.subject_pattern, f"{key}.subject_pattern").groups >= 1,
            f"'{key}.subject_pattern' needs a capture group around the subject id",
        )
    gives_age = False
    if ds.layout == "pattern":
        _check(ds.pattern is not None, f"'{key}.pattern' is required with layout 'pattern'")
        pattern = _regex(str(ds.pattern), f"{key}.pattern")
        _check("emotion" in pattern.groupindex, f"'{key}.pattern' needs a named group (?P<emotion>...)")
        gives_age = "age" in pattern.groupindex
    else:
        _check(ds.pattern is None, f"'{key}.pattern' is only used with layout 'pattern'")
    if ds.layout == "csv":
        _check(ds.labels_file is not None, f"'{key}.labels_file' is required with layout 'csv'")
        _relative_inside(str(ds.labels_file), f"{key}.labels_file")
        gives_age = True  # an optional age_group column; rows without one take the default
    else:
        _check(ds.labels_file is None, f"'{key}.labels_file' is only used with layout 'csv'")
    _check(ds.peak_frames >= 1, f"'{key}.peak_frames' must be >= 1")
    _check(
        ds.age_group is not None or gives_age,
        f"'{key}.age_group' is required: layout '{ds.layout}' gives no per-image age group",
    )


def _validate_split_sizes(c: Config) -> None:
    s = c.split
    _in_range(s.test_size, 0, 0.9, "split.test_size", open_low=True)
    _in_range(s.valid_size, 0, 0.9, "split.valid_size", open_low=True)
    train = (1 - s.test_size) * (1 - s.valid_size)
    _check(
        train >= MIN_TRAIN_FRACTION - 1e-9,
        f"'split.test_size' {s.test_size} and 'split.valid_size' {s.valid_size} leave {train:.0%} of the images "
        f"for training; at least {MIN_TRAIN_FRACTION:.0%} must be left: lower them",
    )
    if c.sample.datasets:  # synthetic datasets: the number of subjects is known now
        counts = subjects_per_split(c.sample.subjects, s.test_size, s.valid_size)
        _check(
            min(counts) >= 1,
            f"'sample.subjects' {c.sample.subjects} with 'split.test_size' {s.test_size} and "
            f"'split.valid_size' {s.valid_size} gives test/valid/train {counts} subjects; each "
            "split needs at least one: raise sample.subjects or the fractions",
        )


def _validate_files(c: Config, spec: ModelSpec) -> None:
    """Files that params name: a weights file the model can start from, a Haar cascade OpenCV can load."""
    weights = c.train.weights
    if weights not in ("pretrained", "imagenet", "fer2013", "none"):
        _check(
            spec.weights[0] != "none",
            f"'train.weights' is the file {weights}, but model '{c.model}' trains from scratch (it takes "
            "'none' or 'pretrained'); choose a model with pretrained weights or remove the file",
        )
        _check(
            Path(weights).expanduser().is_file(),
            f"'train.weights' is {weights}, which does not exist (a path relative to the project root)",
        )
    cascade = c.crop.haar_cascade
    if cascade is not None and "haar" in c.crop.detectors:
        _check(Path(cascade).expanduser().is_file(), f"'crop.haar_cascade' is {cascade}, which does not exist")
        import cv2

        try:
            loaded = not cv2.CascadeClassifier(str(Path(cascade).expanduser())).empty()
        except (cv2.error, SystemError):
            loaded = False
        _check(loaded, f"'crop.haar_cascade' {cascade} is not an OpenCV cascade file (OpenCV loaded nothing from it)")


def validate(c: Config) -> None:
    _in_range(c.seed, 0, MAX_SEED, "seed")
    _check(
        bool(c.seeds) and len(set(c.seeds)) == len(c.seeds),
        "'seeds' must list at least one training seed, each once",
    )
    for i, seed in enumerate(c.seeds):
        _in_range(seed, 0, MAX_SEED, f"seeds[{i}]")
    _check(
        bool(c.age_groups) and len(set(c.age_groups)) == len(c.age_groups),
        "'age_groups' must list at least one distinct age group name",
    )
    for i, group in enumerate(c.age_groups):
        check_name(group, f"'age_groups[{i}]'")
    _check(bool(c.datasets), "'datasets' must list at least one dataset")
    for name, ds in c.datasets.items():
        _validate_dataset(name, ds, c.age_groups)
    for key, names in (("datasets", c.datasets), ("sample.datasets", c.sample.datasets)):
        for name in names:
            _check(
                not name.upper().startswith("POOL"),
                f"'{key}.{name}': names starting with POOL are reserved for pooled models",
            )
    for name, group in c.sample.datasets.items():
        check_name(name, "'sample.datasets' dataset")
        _check(
            name not in c.datasets or c.datasets[name].raw == name,
            f"'datasets.{name}.raw' must be '{name}': the sample stage writes data/raw/{name}",
        )
        _check(group in c.age_groups, f"'sample.datasets.{name}' is '{group}'; choose one of {', '.join(c.age_groups)}")
        if name in c.datasets:
            _check(
                c.datasets[name].age_group == group,
                f"'sample.datasets.{name}' is '{group}' but 'datasets.{name}.age_group' is "
                f"'{c.datasets[name].age_group}'",
            )
    _in_range(c.sample.subjects, 1, 10_000, "sample.subjects")
    _in_range(c.sample.images_per_emotion, 1, 1000, "sample.images_per_emotion")
    _in_range(c.sample.scene_size, 96, 2048, "sample.scene_size")
    _check(
        len(c.labels) >= 2 and len(set(c.labels)) == len(c.labels), "'labels' must hold at least two distinct emotions"
    )
    canonical = [canonical_emotion(label) for label in c.labels]
    for i, emotion in enumerate(canonical):
        first = canonical.index(emotion)
        _check(
            first == i,
            f"'labels' names one emotion twice: '{c.labels[first]}' and '{c.labels[i]}' are both {emotion}; keep one",
        )
    _check(c.model in MODEL_NAMES, f"'model' is '{c.model}'; choose one of {', '.join(MODEL_NAMES)}")
    spec = model_spec(c.model)
    _check(c.head in HEADS, f"'head' is '{c.head}'; choose one of {', '.join(HEADS)}")
    _check(
        c.head != "default" or spec.default_head,
        f"'head' is 'default' but model '{c.model}' has no classifier of its own; choose m1 or m2",
    )
    _check(
        spec.min_img_size <= c.img_size <= MAX_IMG_SIZE,
        f"'img_size' is {c.img_size}; allowed for model '{c.model}': [{spec.min_img_size}, {MAX_IMG_SIZE}]",
    )
    cr = c.crop
    _check(bool(cr.detectors), "'crop.detectors' must name at least one detector")
    for i, det in enumerate(cr.detectors):
        _check(det in DETECTORS, f"'crop.detectors[{i}]' is '{det}'; choose one of {', '.join(DETECTORS)}")
    _check(cr.no_face in ("keep_full", "skip"), "'crop.no_face' must be keep_full or skip")
    _in_range(cr.margin, 0, 1, "crop.margin")
    _in_range(cr.min_confidence, 0, 1, "crop.min_confidence")
    _in_range(cr.min_face, 8, 512, "crop.min_face")
    _in_range(cr.batch_size, 1, 256, "crop.batch_size")
    _in_range(cr.max_side, 64, 8192, "crop.max_side")
    _in_range(cr.max_pixels, 1_000_000, 2_000_000_000, "crop.max_pixels")
    _validate_split_sizes(c)
    t = c.train
    named = ("pretrained", "imagenet", "fer2013", "none")
    _check(
        t.weights in named or t.weights.endswith((".h5", ".keras", ".hdf5")),
        f"'train.weights' must be one of {', '.join(named)} or a path to a .h5/.hdf5/.keras weights file",
    )
    _check(
        t.weights not in ("imagenet", "fer2013") or t.weights in spec.weights,
        f"'train.weights' is {t.weights}, which model '{c.model}' does not have (it has: "
        f"{', '.join(spec.weights)}; 'pretrained' picks its own)",
    )
    _check(t.preprocessing in ("backbone", "rescale"), "'train.preprocessing' must be backbone or rescale")
    _validate_files(c, spec)
    for key, value, high in (
        ("epochs", t.epochs, 1000),
        ("batch_size", t.batch_size, 4096),
        ("soup", t.soup, 20),
        ("fine_tune_layers", t.fine_tune_layers, 100_000),
        ("early_stopping_patience", t.early_stopping_patience, 1000),
        ("reduce_lr_patience", t.reduce_lr_patience, 1000),
        ("probe_epochs", t.probe_epochs, 1000),
    ):
        if value is not None:
            _in_range(value, 0 if key in ("fine_tune_layers", "probe_epochs") else 1, high, f"train.{key}")
    if t.learning_rate is not None:
        _in_range(t.learning_rate, 0, 1, "train.learning_rate", open_low=True)
    _in_range(t.reduce_lr_factor, 0, 1, "train.reduce_lr_factor", open_low=True)
    _in_range(t.min_learning_rate, 0, 1, "train.min_learning_rate")
    _in_range(t.label_smoothing, 0, 0.5, "train.label_smoothing")
    _in_range(t.l2_sp, 0, 10, "train.l2_sp")
    _in_range(t.start_margin, 0, 1, "train.start_margin")
    _in_range(t.ema_epochs, 0, 100, "train.ema_epochs")
    for key, fraction in (("rotation", t.rotation), ("zoom", t.zoom)):
        if fraction is not None:
            _in_range(fraction, 0, 0.5, f"train.{key}")
    for i, alpha in enumerate(t.interpolation):
        _in_range(alpha, 0, 1, f"train.interpolation[{i}]")
    _check(t.monitor in MONITORS, f"'train.monitor' is '{t.monitor}'; choose one of {', '.join(MONITORS)}")
    recipes = ", ".join(SOUP_RECIPES)
    _check(t.soup_recipe in (None, *SOUP_RECIPES), f"'train.soup_recipe' is '{t.soup_recipe}'; choose one of {recipes}")
    _check(c.pool.models in POOLS, f"'pool.models' is '{c.pool.models}'; choose one of {', '.join(POOLS)}")
    methods = ("erm", "balanced", "groupdro", "coral", "mixup")
    _check(c.pool.method in methods, f"'pool.method' is '{c.pool.method}'; choose one of {', '.join(methods)}")
    _in_range(c.pool.dro_step, 0, 10, "pool.dro_step", open_low=True)
    _in_range(c.pool.coral_weight, 0, 100, "pool.coral_weight", open_low=True)
    _in_range(c.pool.mixup_alpha, 0, 10, "pool.mixup_alpha", open_low=True)
    _check(
        c.pool.selection in POOL_SELECTIONS,
        f"'pool.selection' is '{c.pool.selection}'; choose one of {', '.join(POOL_SELECTIONS)}",
    )
    _check(bool(c.tracking.experiment.strip()), "'tracking.experiment' must not be empty")
    e = c.evaluate
    _in_range(e.bootstrap_samples, 100, MAX_BOOTSTRAP_SAMPLES, "evaluate.bootstrap_samples")
    _in_range(e.confidence_level, 0.5, 0.999, "evaluate.confidence_level", open_low=True)
    _in_range(e.gallery_size, 0, 200, "evaluate.gallery_size")
    for i, baseline in enumerate(e.baselines):
        _check(
            baseline in BASELINES, f"'evaluate.baselines[{i}]' is '{baseline}'; choose one of {', '.join(BASELINES)}"
        )
    _in_range(c.explain.images_per_cell, 0, 100, "explain.images_per_cell")
