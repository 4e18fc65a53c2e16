"""Raw-folder entries DVC cannot hash, listed in a block of ``.dvcignore``.

DVC hashes each raw folder before crop runs, and hangs on a FIFO, stops on a dangling link, a link loop or a
file name that is not UTF-8. Listed in ``.dvcignore``, DVC skips them while crop still gives each its report
row. ``fer-age pipeline`` writes the block, ``fer-age check`` says when it is stale.
"""

from __future__ import annotations

import re
from pathlib import Path

from fer_age.config import Config
from fer_age.contracts import RAW
from fer_age.faces.entries import printable, walk

IGNORE_BEGIN = "# BEGIN fer-age pipeline: raw entries DVC cannot hash (crop reports each); `fer-age pipeline` writes"
IGNORE_END = "# END fer-age pipeline"
IGNORE_BLOCK = re.compile(rf"^{re.escape(IGNORE_BEGIN)}\n.*?^{re.escape(IGNORE_END)}\n?", re.S | re.M)
GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


def unhashable_entries(config: Config, raw_root: Path = RAW) -> list[str]:
    """``.dvcignore`` patterns, anchored at the project root, for every entry of the study's raw folders that
    DVC cannot hash: not a regular file or folder (FIFO, socket, device), a dangling or looping link, or a
    name that is not UTF-8 (its undecodable bytes become ``?``)."""
    patterns = []
    for raw in sorted({ds.raw for ds in config.datasets.values()}):
        root = raw_root / raw
        if not root.is_dir():
            continue
        files, others = walk(root)
        for source in sorted([*others, *(f for f in files if printable(f) != f)]):
            patterns.append("/" + _glob_literal(f"{root.as_posix()}/{source}"))
    return patterns


def _glob_literal(path: str) -> str:
    """``path`` as a gitignore pattern matching itself: specials escaped, undecodable bytes any character."""
    escaped = GLOB_SPECIAL.sub(r"\\\1", path)
    return "".join("?" if "\udc80" <= c <= "\udcff" else c for c in escaped)


def write_dvcignore(patterns: list[str], dvcignore: Path) -> bool:
    """Replace fer-age's block in ``dvcignore`` (appended when absent) with ``patterns``; whether it changed."""
    text = dvcignore.read_text() if dvcignore.is_file() else ""
    block = "".join(f"{line}\n" for line in (IGNORE_BEGIN, *patterns, IGNORE_END))
    new = (
        IGNORE_BLOCK.sub(lambda _: block, text, count=1)
        if IGNORE_BLOCK.search(text)
        else (text + ("" if text.endswith("\n") or not text else "\n") + block)
    )
    if new != text:
        dvcignore.write_text(new)
    return new != text


def stale_dvcignore(config: Config, dvcignore: Path) -> list[str]:
    """The patterns that fer-age's block of ``dvcignore`` lacks."""
    text = dvcignore.read_text() if dvcignore.is_file() else ""
    match = IGNORE_BLOCK.search(text)
    listed = set(match.group(0).splitlines()) if match else set()
    return [p for p in unhashable_entries(config) if p not in listed]
