"""A copied project's own MLflow store, re-pointed at the copy's artifact folder.

The SQLite store records absolute artifact locations: a project copied to another folder (``cp -r``, a lab
share mounted elsewhere) would go on writing its runs' models and figures into the original's
``mlartifacts``. Before any stage logs, the store's rows that point into another project's ``mlartifacts``
are moved to this project's: the experiment's location always (new runs land here), and each run, logged
model and model version whose artifacts the copy holds (the others keep reading the original's).
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

ARTIFACTS = "mlartifacts"
# (table, column, key column) of every absolute artifact location in MLflow 3's SQLite schema
LOCATIONS = (
    ("runs", "artifact_uri", "run_uuid"),
    ("logged_models", "artifact_location", "model_id"),
    ("model_versions", "storage_location", "rowid"),
    ("model_versions", "source", "rowid"),
)


def file_path(uri: str) -> Path:
    """The path of a ``file:`` URI."""
    return Path(unquote(urlsplit(uri).path))


def local_folder(uri: str) -> Path | None:
    """The folder of a ``file:`` URI (or a plain absolute path), else None."""
    if uri.startswith("file:"):
        return file_path(uri)
    return Path(uri) if uri.startswith("/") else None


def adopt_copied_store(store: Path, root: Path) -> list[str]:
    """Re-point the experiments of ``store`` whose artifacts lie in another project's ``mlartifacts`` at
    ``root/mlartifacts``, with every row whose artifacts the copy holds; returns one line per experiment moved.

    Locations that are not another project's ``mlartifacts`` (a folder chosen by hand, a server) are left as
    they are, and :func:`warn_if_artifacts_elsewhere` names them.
    """
    own = root / ARTIFACTS
    moved = []
    with sqlite3.connect(store) as db:
        columns = {table: {row[1] for row in db.execute(f"PRAGMA table_info({table})")} for table, *_ in LOCATIONS}
        for experiment, location in db.execute("SELECT name, artifact_location FROM experiments").fetchall():
            folder = local_folder(location)
            if folder is None or folder.name != ARTIFACTS or folder.is_relative_to(root):
                continue
            old, new = folder.as_uri(), own.as_uri()
            db.execute("UPDATE experiments SET artifact_location = ? WHERE artifact_location = ?", (new, location))
            held = total = 0
            for table, column, key in LOCATIONS:
                if column not in columns[table]:
                    continue
                rows = db.execute(f"SELECT {key}, {column} FROM {table} WHERE {column} LIKE ?", (old + "/%",))
                for row_key, value in rows.fetchall():
                    total += 1
                    relocated = new + value[len(old) :]
                    if file_path(relocated).exists():  # the copy holds these artifacts
                        held += 1
                        db.execute(f"UPDATE {table} SET {column} = ? WHERE {key} = ?", (relocated, row_key))
            moved.append(
                f"experiment '{experiment}' now keeps its artifacts in {own} (was {folder}: the project was copied); "
                f"{held} of {total} stored artifact locations found in this copy were re-pointed here"
                + (", the others still read from the original" if held < total else "")
            )
    return moved


def warn_if_artifacts_elsewhere(experiment: str, location: str, root: Path) -> None:
    """Say so when the project's own store keeps an experiment's artifacts outside the project in a folder that
    is not another project's ``mlartifacts`` (so not re-pointed): this run's artifacts would go there."""
    folder = local_folder(location)
    if folder is None or folder.is_relative_to(root):
        return
    print(
        f"warning: this project's MLflow store keeps the artifacts of experiment '{experiment}' in {folder}, "
        "outside this project: this run's models and figures go there. To keep them here, set "
        "tracking.experiment to a new name (a new experiment, with its artifacts in ./mlartifacts).",
        file=sys.stderr,
    )
