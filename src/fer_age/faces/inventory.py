"""The inventory of a raw folder: one row per entry (its printable name, its kind and the SHA-256 of its
bytes), the file that ``dvc repro`` tracks in place of the folder.

DVC hashes every dep before any fer-age code runs, and hangs on a FIFO and stops on a dangling link, a link
loop or a name that is not UTF-8. So no stage declares a user's raw folder: the inventory stage (always run)
lists it the way crop reads it, and crop depends on that list. An image whose bytes change changes its row, so
crop runs again; an entry DVC could not hash is one row like any other, and crop reports it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from fer_age.contracts import INVENTORY_COLUMNS
from fer_age.faces.entries import content_digest, printable, walk

FILE, UNREADABLE = "file", "unreadable"


def list_raw_folder(root: Path, known: dict[str, list] | None = None) -> tuple[pd.DataFrame, dict[str, list]]:
    """The inventory of ``root`` (sorted by source) and the stat cache for the next run.

    ``known`` maps a source to ``[size, mtime_ns, inode, sha256]`` from an earlier run: a file whose size,
    modification time and inode are unchanged keeps its digest without being read again (as DVC's own state).
    """
    known = known or {}
    files, others = walk(root)
    rows, cache = [], {}
    for source in files:
        path = root / source
        try:
            stat = path.stat()
        except OSError:
            rows.append((printable(source), UNREADABLE, ""))
            continue
        key = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
        earlier = known.get(source)
        digest = earlier[3] if earlier and earlier[:3] == key else content_digest(path)
        if digest:
            cache[source] = [*key, digest]
        rows.append((printable(source), FILE if digest else UNREADABLE, digest))
    rows += [(printable(source), status, "") for source, (status, _) in others.items()]
    table = pd.DataFrame(rows, columns=INVENTORY_COLUMNS).sort_values("source", ignore_index=True)
    return table, cache


def read_stat_cache(path: Path) -> dict[str, list]:
    """The stat cache written by :func:`write_stat_cache`, or nothing when absent or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def write_stat_cache(cache: dict[str, list], path: Path) -> None:
    """Keep the stat cache (names that are not UTF-8 stay escaped surrogates in JSON)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cache))


def write_inventory(table: pd.DataFrame, path: Path) -> None:
    """The inventory as CSV: the same entries with the same bytes give the same file on every machine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False, lineterminator="\n")
