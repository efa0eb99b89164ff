"""The articles of a news archive as `extract-archive` reads them: a folder of `.txt`, a JSONL
file, or Parquet files, each record checked on its own.

Why record by record: in an archive of hundreds of thousands of articles some are always
broken (a line that is not JSON, a missing or empty text, an id seen before, bytes that are
not UTF-8). Each becomes an `InputProblem` naming file, line or row, which the store keeps
in its `errors` table, and the run goes on. Only an input that cannot be read at all (no
such path, an unknown format, a Parquet file without a `text` column) is an `InputError`.

Ids: the record's `id` (JSONL, Parquet) or the file stem (`.txt`) is kept; a record without
one gets `h-` and 16 hex digits of the SHA-256 of its text, so the same text gets the same
id in every run (which resuming relies on). `month` (`YYYY-MM` from a `date` that starts so,
else `unknown`) is the store's partition key.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from homs_ner.data.io import JsonlError
from homs_ner.outputs.inputs import InputError, article_files, read_article

OPTIONAL_FIELDS = ("date", "outlet", "url")
UNKNOWN_MONTH = "unknown"
_MONTH = re.compile(r"^(\d{4})-(\d{2})")
JSONL_SUFFIXES = (".jsonl", ".json")


@dataclass(frozen=True)
class ArchiveRecord:
    """One readable article: its id, text, optional metadata and the partition it goes to."""

    id: str
    text: str
    source: str
    date: str | None = None
    outlet: str | None = None
    url: str | None = None

    @property
    def month(self) -> str:
        return month_of(self.date)

    def to_row(self) -> dict:
        """A plain dict (what the engines ship to their workers)."""
        return {**asdict(self), "month": self.month}


@dataclass(frozen=True)
class InputProblem:
    """A record that cannot be processed: its id (or its place when it has none) and why."""

    id: str
    source: str
    reason: str


def month_of(date: str | None) -> str:
    """`YYYY-MM` of a date written `YYYY-MM...`; anything else is `unknown`."""
    match = _MONTH.match(date or "")
    return f"{match[1]}-{match[2]}" if match and 1 <= int(match[2]) <= 12 else UNKNOWN_MONTH


def content_id(text: str) -> str:
    """The id of a record without one: stable across runs, so a resumed run recognises it."""
    return "h-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def input_format(path: Path) -> str:
    """`txt`, `jsonl` or `parquet`: a file by its suffix, a folder by the files it holds."""
    if path.is_file():
        if path.suffix in JSONL_SUFFIXES:
            return "jsonl"
        if path.suffix == ".parquet":
            return "parquet"
        raise InputError(f"{path}: not a .jsonl or .parquet file (give a folder of .txt articles, a JSONL or Parquet)")
    if not path.is_dir():
        raise InputError(f"{path}: no such file or folder")
    kinds = {p.suffix for p in path.iterdir() if p.is_file() and p.suffix in (".txt", ".parquet")}
    if kinds == {".txt", ".parquet"}:
        raise InputError(f"{path}: folder mixes .txt and .parquet files; give one kind")
    if not kinds:
        raise InputError(f"{path}: folder has no .txt or .parquet files")
    return kinds.pop().lstrip(".")


def _check(fields: dict, source: str) -> ArchiveRecord | InputProblem:
    """One raw record (id, text and optional metadata) as a record, or the problem with it."""
    raw_id, text = fields.get("id"), fields.get("text")
    shown_id = str(raw_id) if isinstance(raw_id, (str, int)) and str(raw_id).strip() else source
    if not isinstance(text, str):
        reason = "no text field" if text is None else f"text is {type(text).__name__}, not a string"
        return InputProblem(shown_id, source, f"{source}: {reason}")
    if not text.strip():
        return InputProblem(shown_id, source, f"{source}: empty text")
    if raw_id is not None and shown_id == source:
        return InputProblem(source, source, f"{source}: id must be a non-empty string or an integer, got {raw_id!r}")
    extra = {}
    for name in OPTIONAL_FIELDS:
        value = fields.get(name)
        if value is not None and not isinstance(value, str):
            return InputProblem(shown_id, source, f"{source}: {name} must be a string, got {type(value).__name__}")
        extra[name] = value
    return ArchiveRecord(shown_id if raw_id is not None else content_id(text), text, source, **extra)


def _txt_records(folder: Path) -> Iterator[ArchiveRecord | InputProblem]:
    for path in article_files([folder]):
        try:
            article = read_article(path)
        except InputError as err:
            yield InputProblem(path.stem, str(path), str(err))
            continue
        yield _check({"id": article.id, "text": article.text}, str(path))


def _jsonl_records(path: Path) -> Iterator[ArchiveRecord | InputProblem]:
    """Line by line, split on "\\n" only (see `data.io.jsonl_lines`); each line decoded on its own."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from err
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        source = f"{path}:{lineno}"
        try:
            record = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            yield InputProblem(source, source, str(JsonlError(str(path), lineno, f"not UTF-8 (byte {err.start})")))
            continue
        except json.JSONDecodeError as err:
            yield InputProblem(source, source, str(JsonlError(str(path), lineno, f"not valid JSON: {err}")))
            continue
        if not isinstance(record, dict):
            reason = f"expected a JSON object, got {type(record).__name__}"
            yield InputProblem(source, source, str(JsonlError(str(path), lineno, reason)))
            continue
        yield _check(record, source)


def _parquet_value(value: object) -> object:
    """Parquet dates and timestamps as ISO strings, so that `month` reads them as text dates do."""
    return value.isoformat() if hasattr(value, "isoformat") else value


def _parquet_records(path: Path) -> Iterator[ArchiveRecord | InputProblem]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    for file in files:
        try:
            names = pq.read_schema(file).names
            if "text" not in names:
                raise InputError(f"{file}: Parquet file has no `text` column (columns: {', '.join(names)})")
            table = pq.read_table(file, columns=[c for c in ("id", "text", *OPTIONAL_FIELDS) if c in names])
        except (OSError, pa.ArrowException) as err:
            raise InputError(f"{file}: not a readable Parquet file ({str(err).splitlines()[0]})") from err
        for row_number, row in enumerate(table.to_pylist(), start=1):
            yield _check({k: _parquet_value(v) for k, v in row.items()}, f"{file} row {row_number}")


def read_archive(path: Path) -> tuple[list[ArchiveRecord], list[InputProblem]]:
    """Every record of the input: the readable ones (first of each id) and the problems, in input order.

    A later record with an id already seen is a problem, not a second article: every id is
    stored once.
    """
    reader = {"txt": _txt_records, "jsonl": _jsonl_records, "parquet": _parquet_records}[input_format(path)]
    records: list[ArchiveRecord] = []
    problems: list[InputProblem] = []
    first_seen: dict[str, str] = {}
    for item in reader(path):
        if isinstance(item, InputProblem):
            problems.append(item)
        elif item.id in first_seen:
            problems.append(InputProblem(item.id, item.source, f"{item.source}: duplicate id {item.id!r} (first at {first_seen[item.id]})"))
        else:
            first_seen[item.id] = item.source
            records.append(item)
    return records, problems
