"""Article files given on the command line: found, named, read and checked before any work.

Why a module of its own: `predict`, `extract` and `visualize` all take `.txt` articles, and
each failure mode here (a missing path, a folder without articles, two files that would
write the same output name, bytes that are not UTF-8, an output folder that cannot be
written) used to surface as a traceback, or worse as silently missing output, only after the
model had loaded and every prediction was made.

Texts are read as bytes and decoded as UTF-8 with line endings kept: the offsets of every
result refer to the file's characters exactly as they are, CRLF included.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class InputError(ValueError):
    """An input cannot be used; the message names the file and the reason on one line."""


@dataclass(frozen=True)
class ArticleFile:
    """One article file: its output id (the file stem) and its text as read."""

    id: str
    path: Path
    text: str


def article_files(paths: Sequence[Path], suffixes: tuple[str, ...] = (".txt",)) -> list[Path]:
    """Files as given, folders contributing their `*.txt`; a missing path or empty folder is an error."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in suffixes and p.is_file())
            if not found:
                raise InputError(f"{path}: folder has no {' or '.join(suffixes)} files")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    return files


def check_unique_ids(files: Sequence[Path]) -> None:
    """Two inputs with the same stem would overwrite one output with the other: refuse."""
    by_id: dict[str, list[Path]] = {}
    for f in files:
        by_id.setdefault(f.stem, []).append(f)
    clashes = {k: v for k, v in by_id.items() if len(v) > 1}
    if clashes:
        shown = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in sorted(clashes.items()))
        raise InputError(f"inputs share an output name (rename or give them separately): {shown}")


def read_article(path: Path) -> ArticleFile:
    """The file's text decoded as UTF-8, line endings untouched; bad bytes name file and offset."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from err
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason})") from err
    if "\x00" in text:
        raise InputError(f"{path}: binary file (contains NUL bytes), not an article")
    return ArticleFile(path.stem, path, text)


def check_writable(folder: Path) -> None:
    """Create `folder` if needed and prove a file can be written there, before any slow work."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".homs-ner-write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise InputError(f"{folder}: output folder is not writable ({err.strerror or err})") from err
