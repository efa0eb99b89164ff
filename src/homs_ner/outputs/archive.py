"""Extraction over a whole news archive into the Parquet store, on this process or on Ray Data.

Both engines run the same `ArticleWorker`: it loads the pipeline once (on Ray, once per
actor: Ray Data constructs a callable class once per actor of its pool), runs each batch
through the windowed inference of `outputs.inference` and turns each doc into table rows
with `outputs.extraction`. Its output is one row per article (the rows as JSON, or the
reason it failed), so the driver, the only writer, commits whatever block arrives to the
store (`outputs.store`) and the two engines give the same rows.

Why the driver writes: commits then need no shared file system between Ray nodes and stay
all-or-nothing in one place; what travels back is small (the extraction, not the text).
Why a retried actor is safe: Ray Data restarts a dead actor and resubmits its batch
(`max_restarts`, `max_task_retries`, finite so that an article that kills every worker ends
the run instead of looping); a block reaches the driver once, and a commit's file names
come from its ids, so a repeat could only rewrite the same files.
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from homs_ner.data.conversion import relations_of
from homs_ner.outputs.archive_input import ArchiveRecord, InputProblem, read_archive
from homs_ner.outputs.inputs import InputError
from homs_ner.outputs.store import PARTITION, ArchiveStore

if TYPE_CHECKING:
    import pyarrow as pa
    from spacy.tokens import Doc

    from homs_ner.data.schema import Schema

# Restarts of a dead actor and resubmissions of its batch before the run fails.
MAX_RESTARTS = 3
MAX_TASK_RETRIES = 3
ROW_TABLES = ("articles", "entities", "clauses", "relations")


def model_identity(model: str | Path) -> tuple[str, str]:
    """(`<lang>_<name>`, version) from the pipeline's meta.json, read without loading it."""
    meta_path = Path(model) / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"pipeline {model}: no readable meta.json ({type(err).__name__})") from err
    return f"{meta.get('lang', 'xx')}_{meta.get('name', 'pipeline')}", str(meta.get("version", "0.0.0"))


def _clause_scores(doc: Doc, group: str) -> dict[tuple[int, int], float]:
    """The clause typer's score of each clause, by offsets (none for annotated docs)."""
    import numpy

    spans = doc.spans.get(group, [])
    scores = spans.attrs.get("scores") if len(spans) else None
    # spancat keeps one score per span, as an (n, 1) array in its single-label mode.
    flat = numpy.asarray(scores, dtype="float64").reshape(-1) if scores is not None else []
    if len(flat) != len(spans):
        return {}
    return {(s.start_char, s.end_char): float(score) for s, score in zip(spans, flat)}


def article_tables(doc: Doc, record: dict, schema: Schema, model: tuple[str, str]) -> dict[str, list[dict]]:
    """The rows one processed article adds to each table (see `outputs.store.TABLES`)."""
    from homs_ner.outputs.extraction import extract

    base = {"model": model[0], "model_version": model[1], PARTITION: record[PARTITION]}
    aid = record["id"]
    found = extract(doc, schema, aid)
    names: dict[tuple[int, int], str] = {}
    entities = []
    for label, groups in found["entities"].items():
        for group in groups:
            for m in group["mentions"]:
                names[(m["start"], m["end"])] = group["name"]
                entities.append({"article_id": aid, "label": label, "name": group["name"], **m, **base})
    scores = _clause_scores(doc, schema.span_group)
    clauses = [
        {"article_id": aid, "clause": i, "type": c["type"], "text": c["text"], "start": c["start"], "end": c["end"],
         "score": scores.get((c["start"], c["end"])), **base}
        for i, c in enumerate(found["clauses"])
    ]
    relations = []
    for rel in relations_of(doc):
        row = {"article_id": aid, "label": rel["label"], "score": rel.get("score"), **base}
        for end, ref in (("head", rel["head"]), ("child", rel["child"])):
            span = (ref["start"], ref["end"])
            row |= {f"{end}_label": ref["label"], f"{end}_name": names.get(span), f"{end}_text": doc.text[slice(*span)],
                    f"{end}_start": span[0], f"{end}_end": span[1]}
        relations.append(row)
    article = {
        "id": aid, **{k: record.get(k) for k in ("date", "outlet", "url")}, "chars": len(doc.text),
        "words": sum(1 for t in doc if not t.is_space), "entities": len(entities), "clauses": len(clauses),
        "relations": len(relations), **base,
    }
    return {"articles": [article], "entities": sorted(entities, key=lambda e: e["start"]), "clauses": clauses,
            "relations": relations}


def _peak_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class ArticleWorker:
    """The pipeline, loaded once; called with batches of article rows, returns one result row each.

    A result row: `id`, `tables` (JSON of `article_tables`) or `error` (why the pipeline
    failed on it), `words`, `seconds` (its share of the batch's model time), and the
    worker's `pid` and peak memory, which the scale report reads.
    """

    def __init__(self, model: str, schema: Schema, batch_size: int) -> None:
        import spacy

        self.nlp = spacy.load(model)
        self.schema = schema
        self.batch_size = batch_size
        self.model = model_identity(model)

    def _tables(self, rows: Sequence[dict]) -> list[dict | str]:
        """Each row's tables, or the reason it failed; a failing batch is retried article by article."""
        from homs_ner.outputs.inference import pipe_articles

        try:
            docs = list(pipe_articles(self.nlp, [r["text"] for r in rows], self.batch_size))
            return [article_tables(doc, row, self.schema, self.model) for row, doc in zip(rows, docs)]
        except Exception as err:  # noqa: BLE001 - one bad article must not stop an archive
            if len(rows) > 1:
                return [out for row in rows for out in self._tables([row])]
            return [f"{rows[0]['source']}: pipeline failed ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"]

    def process(self, rows: Sequence[dict]) -> list[dict]:
        start = time.perf_counter()
        outcomes = self._tables(rows)
        share = (time.perf_counter() - start) / max(len(rows), 1)
        pid, peak = os.getpid(), _peak_rss_kb()
        return [
            {"id": row["id"], "source": row["source"], "tables": None if isinstance(out, str) else json.dumps(out, ensure_ascii=False),
             "error": out if isinstance(out, str) else None,
             "words": 0 if isinstance(out, str) else out["articles"][0]["words"], "seconds": share, "pid": pid,
             "peak_rss_kb": peak}
            for row, out in zip(rows, outcomes)
        ]

    def __call__(self, batch: pa.Table) -> pa.Table:
        """Ray Data's entry point: a pyarrow batch in, a pyarrow batch out."""
        import pyarrow as pa

        return pa.Table.from_pylist(self.process(batch.to_pylist()), schema=result_schema())


def result_schema() -> pa.Schema:
    """The worker's result rows as Arrow types (explicit, so an all-error block keeps its types)."""
    import pyarrow as pa

    return pa.schema([("id", pa.string()), ("source", pa.string()), ("tables", pa.string()), ("error", pa.string()),
                      ("words", pa.int64()), ("seconds", pa.float64()), ("pid", pa.int64()), ("peak_rss_kb", pa.int64())])


def _batches(records: Sequence[ArchiveRecord], size: int) -> Iterator[list[dict]]:
    rows = (r.to_row() for r in records)
    while chunk := list(islice(rows, size)):
        yield chunk


def local_results(records: Sequence[ArchiveRecord], model: str, schema: Schema, batch_size: int) -> Iterator[list[dict]]:
    """The local engine: one worker in this process; yields result rows batch by batch."""
    worker = ArticleWorker(model, schema, batch_size)
    for rows in _batches(records, batch_size):
        yield worker.process(rows)


def ray_results(
    records: Sequence[ArchiveRecord], model: str, schema: Schema, batch_size: int, workers: int, address: str | None
) -> Iterator[list[dict]]:
    """The Ray engine: a pool of `workers` actors (one CPU each) in Ray Data; yields result blocks as they finish.

    Starts a local Ray with `workers` CPUs unless Ray is already up or `address` names a
    cluster (`ray://HOST:10001`); shuts down only a Ray it started. On a cluster, `model`
    must be a path every node can read.
    """
    import logging
    import warnings

    import ray

    started = not ray.is_initialized()
    if started:
        quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
        ray.init(address=address, **quiet) if address else ray.init(num_cpus=workers, include_dashboard=False, **quiet)
    try:
        context = ray.data.DataContext.get_current()  # imports ray.data, which sets up its logger
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        context.enable_progress_bars = False
        # One block per batch: a block is a task (what Ray balances over actors and retries)
        # and comes back as one block, so a commit is one batch.
        dataset = ray.data.from_items([r.to_row() for r in records], override_num_blocks=-(-len(records) // batch_size))
        with warnings.catch_warnings():
            # Ray 2.60 has no named parameter for an actor's restarts and retries yet.
            warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
            results = dataset.map_batches(
                ArticleWorker, fn_constructor_kwargs={"model": str(model), "schema": schema, "batch_size": batch_size},
                batch_size=batch_size, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=workers),
                num_cpus=1, max_restarts=MAX_RESTARTS, max_task_retries=MAX_TASK_RETRIES,
            )
        for block in results.iter_batches(batch_size=None, batch_format="pyarrow"):
            yield block.to_pylist()
    finally:
        if started:
            ray.shutdown()


@dataclass(frozen=True)
class Block:
    """One committed block: when it arrived (seconds since the run began), its size, the
    workers' seconds inside the pipeline for it, and the driver's seconds to commit it."""

    at: float
    articles: int
    words: int
    model_seconds: float
    commit_seconds: float


@dataclass
class RunSummary:
    """What a run found and did; `given == articles + errors` once the whole input is done."""

    given: int
    articles: int
    errors: int
    done_before: int
    seconds: float = 0.0
    blocks: list[Block] = field(default_factory=list)
    peak_rss_mb: dict[int, float] = field(default_factory=dict)
    """Each worker process's peak resident memory (by pid; the local engine's is this process)."""

    @property
    def complete(self) -> bool:
        return self.given == self.articles + self.errors

    @property
    def processed(self) -> int:
        return sum(b.articles for b in self.blocks)

    @property
    def words(self) -> int:
        return sum(b.words for b in self.blocks)


def commit_results(store: ArchiveStore, results: Sequence[dict], model: tuple[str, str]) -> None:
    """One block of worker results as one commit: the articles' rows and the pipeline errors."""
    tables: dict[str, list[dict]] = {name: [] for name in (*ROW_TABLES, "errors")}
    articles, errors = [], []
    for result in results:
        if result["tables"] is None:
            errors.append(result["id"])
            tables["errors"].append({"id": result["id"], "source": result["source"], "reason": result["error"],
                                     "model": model[0], "model_version": model[1]})
            continue
        articles.append(result["id"])
        for name, rows in json.loads(result["tables"]).items():
            tables[name] += rows
    store.commit(tables, articles, errors)


def count(store: ArchiveStore, ids: set[str], input_errors: int) -> tuple[int, int]:
    """(articles, errors) of these input ids in the store, input errors included."""
    commits = store.commits()
    return (sum(1 for c in commits for i in c.articles if i in ids),
            input_errors + sum(1 for c in commits for i in c.errors if i in ids))


@dataclass(frozen=True)
class ArchivePlan:
    """A checked run before any model loads: the input read, the store bound to the model, what is left."""

    records: list[ArchiveRecord]
    problems: list[InputProblem]
    identity: tuple[str, str]
    store: ArchiveStore
    pending: list[ArchiveRecord]

    @property
    def given(self) -> int:
        return len(self.records) + len(self.problems)


def plan_archive(source: Path, model: str, out: Path) -> ArchivePlan:
    """Read the input, bind the store to the model, clear unfinished commits and list what is left.

    Raises `InputError` for an unusable input or pipeline and `StoreError` for a store of
    another model, before any work. What is left is sorted by (month, id), so a batch
    mostly falls in one partition and every run of the same input forms the same batches.
    """
    records, problems = read_archive(source)
    identity = model_identity(model)
    store = ArchiveStore(out)
    store.claim(*identity)
    store.remove_unfinished()
    store.write_input_errors(problems, *identity)
    done = store.done_ids()
    pending = sorted((r for r in records if r.id not in done), key=lambda r: (r.month, r.id))
    return ArchivePlan(records, problems, identity, store, pending)


def run_archive(
    plan: ArchivePlan,
    model: str,
    schema: Schema,
    *,
    engine: str = "local",
    workers: int = 1,
    address: str | None = None,
    batch_size: int = 32,
    on_block: Callable[[int], None] = lambda n: None,
) -> RunSummary:
    """Extract what the plan left, committing block by block; see the module doc.

    `engine` is "local" (this process) or "ray" (`workers` actors, on `address` if given);
    `on_block(articles committed)` drives a progress bar.
    """
    summary = RunSummary(plan.given, 0, 0, len(plan.records) - len(plan.pending))
    start = time.perf_counter()
    if plan.pending:
        results = (ray_results(plan.pending, model, schema, batch_size, workers, address) if engine == "ray"
                   else local_results(plan.pending, model, schema, batch_size))
        for block in results:
            arrived = time.perf_counter()
            commit_results(plan.store, block, plan.identity)
            summary.blocks.append(Block(arrived - start, len(block), sum(r["words"] for r in block),
                                        sum(r["seconds"] for r in block), time.perf_counter() - arrived))
            for r in block:
                summary.peak_rss_mb[r["pid"]] = max(summary.peak_rss_mb.get(r["pid"], 0.0), r["peak_rss_kb"] / 1024)
            on_block(len(block))
    summary.seconds = time.perf_counter() - start
    summary.articles, summary.errors = count(plan.store, {r.id for r in plan.records}, len(plan.problems))
    return summary
