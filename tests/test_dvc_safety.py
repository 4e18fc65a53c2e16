"""What DVC does before any fer-age code runs: no params value reaches a path DVC reads, deletes or writes, and
raw-folder entries DVC cannot hash never hang or stop `dvc repro`, which hashes each raw folder's inventory and
never the folder (real DVC in a temporary git repo)."""

import os
from pathlib import Path

import pandas as pd
import pytest
from conftest import commit, make_project, run, tiny_params, write_params
from layouts import _scene

from fer_age.faces.synthetic import make_subject

HOSTILE = "../../../victim"  # from <tmp>/a/b/project, the victim folder next to a/
LIMIT_S = 240  # a DVC that hashes the victim's FIFO hangs: the command is stopped and the test fails


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A folder outside the project with a file to keep and a FIFO that any hashing of it would hang on."""
    folder = tmp_path / "victim"
    folder.mkdir()
    (folder / "keep.txt").write_text("keep")
    os.mkfifo(folder / "pipe.jpg")
    return folder


def _untouched(victim: Path) -> bool:
    return (victim / "keep.txt").read_text() == "keep" and sorted(p.name for p in victim.iterdir()) == [
        "keep.txt",
        "pipe.jpg",
    ]


def _dvc(args: list[str], project: Path):
    import subprocess

    try:
        return run(["dvc", *args], project, check=False, timeout=LIMIT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"dvc {' '.join(args)} hung for {LIMIT_S} s (it hashed something it should not)")


@pytest.mark.parametrize(
    "section, change",
    [
        ("sample", lambda p: p["sample"]["datasets"].update({HOSTILE: "child"})),
        ("datasets", lambda p: p["datasets"]["SAMPLE-CHILD"].update(raw=HOSTILE)),
        ("datasets", lambda p: p["datasets"].update({HOSTILE: {"raw": "SAMPLE-CHILD", "age_group": "child"}})),
    ],
)
def test_hostile_params_in_the_file_never_reach_a_path_outside_the_project(tmp_path, victim, section, change):
    project = make_project(tmp_path / "a" / "b" / "project")
    params = tiny_params()
    change(params)
    write_params(project, params)  # invalid: dvc.yaml's pipeline vars keep the names they had
    commit(project, "hostile params")
    result = _dvc(["repro"], project)
    assert result.returncode != 0 and "not allowed" in result.stderr, result.stdout + result.stderr
    assert _untouched(victim)
    assert HOSTILE not in (project / "dvc.yaml").read_text()


@pytest.mark.parametrize(
    "setting",
    [
        f"datasets.SAMPLE-CHILD.raw={HOSTILE}",
        # the other ways in, each a real `dvc exp run` (8 s): with the e2e tests, in CI's second command
        pytest.param(f"+sample.datasets={{{HOSTILE}: child}}", marks=pytest.mark.e2e),  # Hydra: '+' adds keys
        pytest.param(f"+datasets={{{HOSTILE}: {{raw: SAMPLE-CHILD, age_group: child}}}}", marks=pytest.mark.e2e),
    ],
)
def test_hostile_values_set_by_dvc_exp_run_never_reach_a_path_outside_the_project(tmp_path, victim, setting):
    project = make_project(tmp_path / "a" / "b" / "project")
    result = _dvc(["exp", "run", "-S", setting], project)
    assert result.returncode != 0 and "not allowed" in result.stderr, result.stdout + result.stderr
    assert _untouched(victim)


@pytest.mark.e2e  # real dvc repro and stage list (11 s)
def test_params_and_dvc_yaml_that_disagree_stop_the_stage_with_the_command_to_run(project):
    params = tiny_params()
    params["sample"]["datasets"]["SAMPLE-ADULT"] = "adult"
    params["datasets"]["SAMPLE-ADULT"] = {"raw": "SAMPLE-ADULT", "age_group": "adult", "subject_pattern": r"_(s\d+)_"}
    (project / "params.yaml").write_text(__import__("yaml").safe_dump(params, sort_keys=False))  # by hand
    result = run(["dvc", "repro", "sample@SAMPLE-CHILD"], project, check=False)
    assert result.returncode != 0
    assert "run `fer-age pipeline`" in result.stderr and "SAMPLE-ADULT" in result.stderr
    assert "run `fer-age pipeline`" in run(["fer-age", "check"], project, check=False).stderr
    run(["fer-age", "pipeline"], project)
    assert "SAMPLE-ADULT: SAMPLE-ADULT" in (project / "dvc.yaml").read_text()
    assert "sample@SAMPLE-ADULT" in run(["dvc", "stage", "list"], project).stdout


def _odd_raw_folder(root: Path) -> dict[str, str]:
    """Two real images per emotion, and one entry of every kind DVC cannot hash; source -> expected status."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    expected = {}
    for s in range(2):
        person = make_subject(s, "adult", rng)
        for emotion in ("Angry", "Fear", "Happy", "Sad"):
            path = root / f"ODD_{emotion}" / f"ODD_s{s}_{emotion}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), cv2.cvtColor(_scene(person, emotion, rng), cv2.COLOR_RGB2BGR))
            expected[f"ODD_{emotion}/{path.name}"] = "usable"
    named = os.fsencode(root / "ODD_Happy") + b"/ODD_s9_caf\xe9.png"  # a name that is not UTF-8
    scene = _scene(make_subject(9, "adult", rng), "Happy", rng)
    with open(named, "wb") as out:
        out.write(cv2.imencode(".png", cv2.cvtColor(scene, cv2.COLOR_RGB2BGR))[1].tobytes())
    expected["ODD_Happy/ODD_s9_caf\\xe9.png"] = "usable"
    os.mkfifo(root / "ODD_Sad" / "pipe.png")
    expected["ODD_Sad/pipe.png"] = "not_an_image"
    (root / "ODD_Fear" / "gone.png").symlink_to(root / "nowhere.png")
    expected["ODD_Fear/gone.png"] = "broken_link"
    (root / "ODD_Angry" / "loop").symlink_to(root / "ODD_Angry")
    expected["ODD_Angry/loop"] = "broken_link"
    return expected


def _statuses(project: Path) -> dict[str, str]:
    report = pd.read_csv(project / "data" / "cropped" / "ODD" / "crop_report.csv", keep_default_na=False)
    return dict(zip(report["source"], report["status"]))


@pytest.mark.e2e  # a real dvc repro of the crop stage (about 35 s)
def test_raw_entries_dvc_cannot_hash_get_their_rows_under_plain_dvc_repro(project):
    params = tiny_params()
    params["datasets"]["ODD"] = {"raw": "ODD", "age_group": "adult", "subject_pattern": r"_(s\d+)_"}
    write_params(project, params)  # the dataset names only: nothing lists the odd entries anywhere
    expected = _odd_raw_folder(project / "data" / "raw" / "ODD")
    commit(project, "odd raw folder")
    run(["fer-age", "check"], project)
    result = _dvc(["repro", "crop@ODD"], project)
    assert result.returncode == 0, result.stdout + result.stderr
    statuses = _statuses(project)
    assert set(statuses) == set(expected)
    for source, status in expected.items():
        assert statuses[source] in (("cropped", "no_face_kept_full") if status == "usable" else (status,)), source
    assert "Segmentation" not in result.stderr
    unchanged = _dvc(["repro", "crop@ODD"], project)
    assert "Stage 'crop@ODD' didn't change" in unchanged.stdout, unchanged.stdout
    os.mkfifo(project / "data" / "raw" / "ODD" / "ODD_Happy" / "another_pipe.png")  # after the first repro
    assert _dvc(["status"], project).returncode == 0  # no hang: DVC hashes the inventory, not the folder
    again = _dvc(["repro", "crop@ODD"], project)
    assert again.returncode == 0 and "Running stage 'crop@ODD'" in again.stdout, again.stdout + again.stderr
    assert _statuses(project)["ODD_Happy/another_pipe.png"] == "not_an_image"
