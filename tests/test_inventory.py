"""The raw-folder inventory that `dvc repro` hashes in place of the folder: every entry one row, the same bytes
the same file wherever the folder lies, unchanged files not read again, changed ones read."""

import os
import shutil
from pathlib import Path

import pandas as pd

from fer_age.cli import main as fer_age
from fer_age.faces.inventory import list_raw_folder, write_inventory


def _odd_folder(root: Path) -> None:
    (root / "Happy").mkdir(parents=True)
    (root / "Happy" / "a.png").write_bytes(b"first image")
    (root / "Happy" / "b.png").write_bytes(b"second image")
    with open(os.fsencode(root / "Happy") + b"/caf\xe9.png", "wb") as out:
        out.write(b"third image")
    os.mkfifo(root / "Happy" / "pipe.png")
    (root / "Happy" / "gone.png").symlink_to("../nowhere.png")
    (root / "Happy" / "loop").symlink_to(".")  # the folder holding it


def test_every_entry_gets_one_row_and_no_special_file_is_opened(tmp_path):
    _odd_folder(tmp_path / "raw")
    table, _ = list_raw_folder(tmp_path / "raw")  # opening the FIFO would block this test
    kinds = dict(zip(table["source"], table["kind"]))
    assert kinds == {
        "Happy/a.png": "file",
        "Happy/b.png": "file",
        "Happy/caf\\xe9.png": "file",
        "Happy/gone.png": "broken_link",
        "Happy/loop": "broken_link",
        "Happy/pipe.png": "not_an_image",
    }
    digests = dict(zip(table["source"], table["sha256"]))
    assert digests["Happy/a.png"] != digests["Happy/b.png"] and len(digests["Happy/a.png"]) == 64


def test_the_same_entries_give_the_same_bytes_wherever_the_folder_lies(tmp_path):
    _odd_folder(tmp_path / "one")
    shutil.copytree(tmp_path / "one", tmp_path / "two", symlinks=True, ignore=shutil.ignore_patterns("pipe.png"))
    os.mkfifo(tmp_path / "two" / "Happy" / "pipe.png")
    for name in ("one", "two"):
        write_inventory(list_raw_folder(tmp_path / name)[0], tmp_path / f"{name}.csv")
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "two.csv").read_bytes()


def test_unchanged_files_keep_their_cached_digest_and_changed_ones_are_read(tmp_path):
    _odd_folder(tmp_path / "raw")
    _, cache = list_raw_folder(tmp_path / "raw")
    cache["Happy/a.png"][3] = "cached"  # only a digest taken from the cache can say this
    table, _ = list_raw_folder(tmp_path / "raw", cache)
    assert table.set_index("source").loc["Happy/a.png", "sha256"] == "cached"
    (tmp_path / "raw" / "Happy" / "a.png").write_bytes(b"an edited image")
    table, _ = list_raw_folder(tmp_path / "raw", cache)
    assert table.set_index("source").loc["Happy/a.png", "sha256"] not in ("cached", "")


def test_the_inventory_command_lists_a_study_raw_folder_and_refuses_others(tmp_path, monkeypatch, capsys):
    import yaml
    from conftest import tiny_params

    params = tiny_params()
    params["datasets"]["ODD"] = {"raw": "ODD", "age_group": "adult", "subject_pattern": r"_(s\d+)_"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    _odd_folder(tmp_path / "data" / "raw" / "ODD")
    monkeypatch.chdir(tmp_path)
    assert fer_age(["inventory", "inventory@ODD"]) == 0
    table = pd.read_csv(tmp_path / "data" / "inventory" / "ODD.csv", keep_default_na=False)
    assert len(table) == 6 and "6 entries" in capsys.readouterr().out
    assert fer_age(["inventory", "OTHER"]) == 1
    assert "no dataset in params.yaml reads the raw folder 'OTHER'" in capsys.readouterr().err
    assert fer_age(["inventory", "../etc"]) == 1
    assert "raw folder name '../etc' is not allowed" in capsys.readouterr().err
