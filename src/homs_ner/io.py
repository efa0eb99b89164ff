"""Small file helpers shared by every stage: atomic writes and JSONL."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path


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


def write_jsonl(path: Path, records: Iterable[dict]) -> int:
    """Write records one JSON object a line (UTF-8, Arabic kept readable), atomically."""
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def jsonl_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of a JSONL text, split on "\\n" only.

    Not `str.splitlines()`: that also splits at U+2028/U+2029 (and \\x85, \\x1c-\\x1e), which
    JSON allows unescaped inside strings and Doccano writes into exported texts; a record
    would break in two and every later line number would shift.
    """
    return enumerate(text.split("\n"), start=1)


def read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, record); a bad line raises ValueError naming file and line."""
    with Path(path).open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{lineno}: not valid JSON: {err}") from err
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
            yield lineno, record
