"""The archive store: Parquet tables under one folder, written in commits that are all or nothing.

Layout (Hive-style partitions, which DuckDB and pyarrow both read)::

    DIR/_store.json                                  model name and version, the partition key
    DIR/articles/month=2016-12/part-<commit>.parquet
    DIR/entities/month=.../part-<commit>.parquet     (also clauses, relations)
    DIR/errors/part-<commit>.parquet                 articles the pipeline failed on
    DIR/errors/part-input.parquet                    records that could not be read
    DIR/_commits/<commit>.json                       the ids a commit holds: its commit marker

Why by month: analysts ask by time ("evacuations by month", a year's guarantors), and a
filter on `month` then opens only that month's folders; an archive is also read in date
order, so a commit (one batch) mostly falls into one month and writes one file per table.
A hash bucket of the id would spread every batch over all buckets (many small files) and
help only lookups of single ids, which nobody asks for.

Exactly once: a commit writes each table's file (to a temporary name, then renamed), and
only then its marker. At start, files without a marker (a run killed between the two) are
deleted and the marked ids are done; so after any kill every id is either in one finished
commit or in none, and the next run does the rest. A commit's name is a hash of its ids:
a retried batch writes the same names again, never a second copy.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from homs_ner.data.io import atomic_write_bytes, write_json

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from homs_ner.outputs.archive_input import InputProblem

STORE_FILE = "_store.json"
COMMITS = "_commits"
PARTITION = "month"
INPUT_ERRORS = "part-input.parquet"
FORMAT_VERSION = 1
# Each table's columns (Parquet types by name, see `_arrow_type`); `month` is the partition,
# in the folder name only. Every row table names the model that made it.
MODEL_COLUMNS = [("model", "string"), ("model_version", "string")]
TABLES: dict[str, list[tuple[str, str]]] = {
    "articles": [
        ("id", "string"), ("date", "string"), ("outlet", "string"), ("url", "string"), ("chars", "int64"),
        ("words", "int64"), ("entities", "int64"), ("clauses", "int64"), ("relations", "int64"), *MODEL_COLUMNS,
    ],
    "entities": [
        ("article_id", "string"), ("label", "string"), ("name", "string"), ("text", "string"),
        ("start", "int64"), ("end", "int64"), *MODEL_COLUMNS,
    ],
    "clauses": [
        ("article_id", "string"), ("clause", "int64"), ("type", "string"), ("text", "string"),
        ("start", "int64"), ("end", "int64"), ("score", "float64"), *MODEL_COLUMNS,
    ],
    "relations": [
        ("article_id", "string"), ("label", "string"), ("head_label", "string"), ("head_name", "string"),
        ("head_text", "string"), ("head_start", "int64"), ("head_end", "int64"), ("child_label", "string"),
        ("child_name", "string"), ("child_text", "string"), ("child_start", "int64"), ("child_end", "int64"),
        ("score", "float64"), *MODEL_COLUMNS,
    ],
    "errors": [("id", "string"), ("source", "string"), ("reason", "string"), *MODEL_COLUMNS],
}
PARTITIONED = ("articles", "entities", "clauses", "relations")


class StoreError(ValueError):
    """The output folder cannot hold this run (another model's results, a broken marker)."""


@dataclass(frozen=True)
class Commit:
    """What one finished commit holds: the ids of its articles and of its pipeline errors."""

    name: str
    articles: tuple[str, ...]
    errors: tuple[str, ...]


def schema(table: str) -> pa.Schema:
    import pyarrow as pa

    types = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64()}
    return pa.schema([(name, types[kind]) for name, kind in TABLES[table]])


def commit_name(ids: Iterable[str]) -> str:
    """A commit's name from its ids: the same batch, retried or re-run, gets the same files."""
    return hashlib.sha256("\n".join(sorted(ids)).encode("utf-8")).hexdigest()[:20]


def _parquet_bytes(rows: Sequence[dict], table: str) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(list(rows), schema=schema(table)), buffer, compression="zstd")
    return buffer.getvalue()


class ArchiveStore:
    """One output folder of `extract-archive`: open it, see what is done, add commits, query it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # --- the model the store belongs to ---------------------------------------------------

    def claim(self, model: str, model_version: str) -> None:
        """Bind an empty folder to a model, or check that it already holds this model's results."""
        meta_path = self.root / STORE_FILE
        wanted = {"format": FORMAT_VERSION, "model": model, "model_version": model_version, "partitioning": PARTITION}
        if meta_path.exists():
            try:
                found = json.loads(meta_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise StoreError(f"{meta_path}: not a readable store file ({err})") from err
            if (found.get("model"), found.get("model_version")) != (model, model_version):
                raise StoreError(
                    f"{self.root} holds results of {found.get('model')} {found.get('model_version')}, "
                    f"not {model} {model_version}; give another --out"
                )
            return
        write_json(meta_path, wanted)

    # --- commits --------------------------------------------------------------------------

    def commits(self) -> list[Commit]:
        """Every finished commit (those whose marker was written)."""
        found = []
        for marker in sorted((self.root / COMMITS).glob("*.json")):
            try:
                data = json.loads(marker.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise StoreError(f"{marker}: unreadable commit marker ({err})") from err
            found.append(Commit(marker.stem, tuple(data["articles"]), tuple(data["errors"])))
        return found

    def done_ids(self) -> set[str]:
        """Ids in finished commits: articles and pipeline errors alike are not run again."""
        return {i for c in self.commits() for i in (*c.articles, *c.errors)}

    def remove_unfinished(self) -> list[Path]:
        """Delete table files of commits without a marker, and temporary files of killed writes."""
        finished = {c.name for c in self.commits()}
        removed = []
        for table in TABLES:
            for path in (self.root / table).rglob("*"):
                stale_tmp = path.name.endswith(".tmp")
                orphan = path.suffix == ".parquet" and path.name != INPUT_ERRORS and path.stem.removeprefix("part-") not in finished
                if path.is_file() and (stale_tmp or orphan):
                    path.unlink()
                    removed.append(path)
        return removed

    def _file(self, table: str, name: str, month: str | None) -> Path:
        folder = self.root / table / (f"{PARTITION}={month}" if month is not None else "")
        return folder / f"part-{name}.parquet"

    def commit(self, tables: dict[str, list[dict]], articles: Sequence[str], errors: Sequence[str]) -> Commit:
        """Write one batch's rows (each partitioned row carries its `month`) and then its marker."""
        name = commit_name([*articles, *errors])
        files = []
        for table, rows in tables.items():
            if table in PARTITIONED:
                by_month: dict[str, list[dict]] = {}
                for row in rows:
                    by_month.setdefault(row[PARTITION], []).append(row)
                parts = by_month.items()
            else:
                parts = [(None, rows)] if rows else []
            for month, part in parts:
                path = self._file(table, name, month)
                atomic_write_bytes(path, _parquet_bytes(part, table))
                files.append(str(path.relative_to(self.root)))
        marker = {"articles": list(articles), "errors": list(errors), "files": files}
        write_json(self.root / COMMITS / f"{name}.json", marker, indent=None)
        return Commit(name, tuple(articles), tuple(errors))

    def write_input_errors(self, problems: Sequence[InputProblem], model: str, model_version: str) -> None:
        """The input's unreadable records: one file, rewritten whole by every run of the same input."""
        rows = [{"id": p.id, "source": p.source, "reason": p.reason, "model": model, "model_version": model_version}
                for p in problems]
        path = self._file("errors", "input", None)
        if rows:
            atomic_write_bytes(path, _parquet_bytes(rows, "errors"))
        else:
            path.unlink(missing_ok=True)

    # --- reading --------------------------------------------------------------------------

    def exists(self) -> bool:
        return (self.root / STORE_FILE).is_file()

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB with one view per table over its Parquet files (`month` from the path)."""
        import duckdb
        import pyarrow as pa

        con = duckdb.connect()
        for table in TABLES:
            folder = self.root / table
            if any(folder.rglob("*.parquet")):
                pattern = str(folder / ("**/*.parquet" if table in PARTITIONED else "*.parquet")).replace("'", "''")
                hive = ", hive_partitioning = true, hive_types = {'month': 'VARCHAR'}" if table in PARTITIONED else ""
                con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{pattern}'{hive})")
            else:
                empty = pa.Table.from_pylist([], schema=schema(table))
                if table in PARTITIONED:
                    empty = empty.append_column(PARTITION, pa.array([], pa.string()))
                con.register(f"_{table}_empty", empty)
                con.execute(f"CREATE VIEW {table} AS SELECT * FROM _{table}_empty")
        return con
