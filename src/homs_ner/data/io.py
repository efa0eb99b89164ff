"""Small file helpers shared by every stage: the one atomic writer, JSON and JSONL, and the
one reader of a Doccano export zip."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, data: object, *, indent: int | None = 2, ensure_ascii: bool = False) -> None:
    """Write one JSON document (Arabic kept readable unless `ensure_ascii`), atomically."""
    atomic_write_text(path, json.dumps(data, indent=indent, ensure_ascii=ensure_ascii) + "\n")


def write_jsonl(path: Path, records: Iterable[dict]) -> int:
    """Write records one JSON object a line (UTF-8, Arabic kept readable), atomically."""
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


class JsonlError(ValueError):
    """A JSONL line that is not a JSON object; names the file (`where`) and the line."""

    def __init__(self, where: str, lineno: int, reason: str) -> None:
        super().__init__(f"{where}:{lineno}: {reason}")
        self.where, self.lineno, self.reason = where, lineno, reason


def jsonl_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of a JSONL text, split on "\\n" only.

    Not `str.splitlines()`: that also splits at U+2028/U+2029 (and \\x85, \\x1c-\\x1e), which
    JSON allows unescaped inside strings and Doccano writes into exported texts; a record
    would break in two and every later line number would shift.
    """
    return enumerate(text.split("\n"), start=1)


def iter_jsonl(lines: Iterable[str], where: str) -> Iterator[tuple[int, dict]]:
    """Yield (line number, record) of the non-blank lines; a bad line raises JsonlError."""
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise JsonlError(where, lineno, f"not valid JSON: {err}") from err
        if not isinstance(record, dict):
            raise JsonlError(where, lineno, f"expected a JSON object, got {type(record).__name__}")
        yield lineno, record


def read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, record) of a JSONL file; a bad line raises JsonlError."""
    with Path(path).open(encoding="utf-8") as handle:
        yield from iter_jsonl(handle, str(path))


def export_members(path: Path | IO[bytes]) -> dict[str, bytes]:
    """The ``.jsonl`` members of a Doccano export zip (one per annotator, or ``all.jsonl``),
    by member name, in name order. Raises zipfile.BadZipFile or OSError for a bad zip."""
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in sorted(archive.namelist()) if name.endswith(".jsonl")}
