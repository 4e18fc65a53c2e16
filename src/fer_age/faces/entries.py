"""Entries of a raw folder as they are on disk: every file, link and special file found, names that are
not UTF-8 made printable, byte-identical images marked so that each is used once."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from fer_age.contracts import Status


def walk(root: Path) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """Every entry under ``root``: regular files, and the others with their status and message.

    Directory links are followed once (a link back into a folder already walked is a loop).
    """
    files: list[str] = []
    others: dict[str, tuple[str, str]] = {}
    seen = {root.resolve()}

    def visit(folder: Path, relative: PurePosixPath) -> None:
        for child in sorted(folder.iterdir(), key=lambda p: p.name):
            source = str(relative / child.name)
            try:
                target = child.resolve(strict=True)
            except (OSError, RuntimeError) as err:
                others[source] = (Status.BROKEN_LINK, f"broken or looping link: {type(err).__name__}")
                continue
            if child.is_dir():
                if target in seen:
                    others[source] = (Status.BROKEN_LINK, f"link loop: {target} is already walked")
                    continue
                seen.add(target)
                visit(child, relative / child.name)
            elif child.is_file():
                files.append(source)
            else:
                others[source] = (Status.NOT_AN_IMAGE, "not a regular file")

    visit(root, PurePosixPath())
    return files, others


def content_digest(path: Path) -> str:
    """SHA-256 of a file's bytes ('' when it cannot be read: the crop reports it as unreadable)."""
    try:
        with open(path, "rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    except OSError:
        return ""


def mark_duplicates(items: list[RawItem]) -> list[RawItem]:
    """Candidates with the same bytes as another: with one label, the first (by source) stays a candidate and
    the others are ``duplicate``; with different labels, all are ``conflicting_labels`` (no label can be
    trusted). Either way no image reaches two splits or two labels."""
    by_digest: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        if not item.status:
            digest = content_digest(item.path)
            if digest:
                by_digest[digest].append(index)
    marked = list(items)
    for indices in by_digest.values():
        if len(indices) < 2:
            continue
        first = items[indices[0]]
        emotions = sorted({items[i].emotion for i in indices})
        for i in indices:
            if len(emotions) > 1:
                others = ", ".join(f"{items[j].source} ({items[j].emotion})" for j in indices if j != i)
                marked[i] = replace(items[i], status=Status.CONFLICTING_LABELS, message=f"same bytes as {others}")
            elif i != indices[0]:
                marked[i] = replace(items[i], status=Status.DUPLICATE, message=f"same bytes as {first.source}")
    return marked


def shared_across(items: dict[str, list[RawItem]]) -> list[tuple[str, str, str, str]]:
    """Candidates whose bytes appear in more than one dataset: (dataset, source, other dataset, other source),
    each copy paired with the first one found (datasets in the order given)."""
    first: dict[str, tuple[str, str]] = {}
    shared = []
    for dataset, entries in items.items():
        for item in entries:
            digest = content_digest(item.path) if not item.status else ""
            if not digest:
                continue
            seen = first.setdefault(digest, (dataset, item.source))
            if seen[0] != dataset:
                shared.append((seen[0], seen[1], dataset, printable(item.source)))
    return shared


def printable(source: str) -> str:
    """``source`` as UTF-8 text: bytes of a file name that are not UTF-8 shown as ``\\xNN`` (the path to the
    file itself is kept as is); the report, the output names and OpenCV all need text."""
    return source.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class RawItem:
    """One entry under a raw folder: a candidate image (``status == ''``) or why it is not used."""

    source: str  # path relative to the raw folder, '/'-separated
    path: Path
    emotion: str = ""
    label: int | None = None  # index into params labels
    subject: str = ""
    age_group: str = ""
    status: str = ""
    message: str = ""
