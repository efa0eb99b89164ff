"""Pre-annotation: a pipeline's predictions entered as an annotator's own spans and relations,
for them to correct (like Prodigy's `ner.correct`).

Round trips, not the model, are the cost on a project of thousands of paragraphs, so what
already exists is read per project, never per example:

* the examples (each with the annotator's confirmation state) and the project's
  pre-annotation comments, page by page (`DoccanoSession.page_size` items a page);
* the annotator's spans from one JSONL export (a POST, a few status polls, a GET) when a
  project admin's client is given, as the command line does: Doccano 1.8.4 lists spans only
  per example, and only the export returns them for a whole project. Without an admin, one
  span read per example still in question (neither confirmed nor marked), from the pool.

Doccano 1.8.4 has no bulk create for spans, relations or comments (its upload makes new
examples; its auto-labeling calls a model server once per example), so writing stays one
POST per span, per relation and one comment per example. They go over the session's
keep-alive connections from a small bounded thread pool, one example per task: examples in
parallel, each example's requests in order (a relation needs its spans' ids), its comment
last, so an interrupted example has spans but no mark and is skipped as worked on.
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy
from spacy.language import Language
from spacy.tokens import Doc

from homs_ner.data.conversion import doc_to_example, relations_of
from homs_ner.data.records import Example, to_doccano
from homs_ner.data.schema import Schema
from homs_ner.doccano.client import DoccanoClient, read_export_zip
from homs_ner.doccano.sync import Progress, create_annotation, project_maps
from homs_ner.doccano.types import Comment, DoccanoError, ExportFormatError

PREANNOTATION_MARK = "homs-ner pre-annotation"
# Enough to keep a 2-worker local Doccano busy while the model runs; small enough not to
# queue a shared server's SQLite writes behind one annotator's suggestions.
DEFAULT_WORKERS = 4

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class Suggestion:
    """A model's spans and relations for one paragraph, with a score for each."""

    example: Example
    span_probs: list[float]
    relation_probs: list[float]


def suggestion(doc: Doc, schema: Schema) -> Suggestion:
    """The doc's entities, clauses and relations as an Example, each with the model's score.

    Clause scores come from the span categorizer (`attrs["scores"]`), relation scores from
    the relation component; `ner` gives none, so entities get 1.0. Every score is > 0,
    which is what tells a suggestion from a span drawn in the UI (prob 0.0).
    """
    example = doc_to_example(doc, schema)
    clauses = list(doc.spans.get(schema.span_group, []))
    raw = doc.spans[schema.span_group].attrs.get("scores") if clauses else None
    # spancat writes one row of scores per span; the span's own label is its best one.
    scores = numpy.asarray(raw).reshape(len(clauses), -1).max(axis=1) if raw is not None else numpy.ones(len(clauses))
    clause_score = {
        (c.start_char, c.end_char, schema.doccano_clause_label(c.label_)): float(score)
        for c, score in zip(clauses, scores)
    }
    span_probs = [max(clause_score.get((s.start, s.end, s.label), 1.0), 1e-3) for s in example.spans]
    relation_probs = [max(float(r.get("score", 1.0)), 1e-3) for r in relations_of(doc)]
    return Suggestion(example, span_probs, relation_probs)


@dataclass
class PreannotateReport:
    preannotated: int = 0
    skipped: int = 0
    spans: int = 0
    relations: int = 0
    suggestions: list[dict] = field(default_factory=list)


def marked_examples(comments: Iterable[Comment], username: str) -> set[int]:
    """Ids of the examples `username` already got suggestions on (their comment carries the mark)."""
    return {c["example"] for c in comments if c["username"] == username and c["text"].startswith(PREANNOTATION_MARK)}


def examples_with_spans(records: dict[str, list[dict[str, Any]]], username: str) -> set[int]:
    """Ids of the examples where `username` has spans, from export records by user.

    A collaborative project exports everyone's work as `all`, which is also what its span
    list shows each user.
    """
    rows = records.get(username, records.get("all"))
    if rows is None:
        raise DoccanoError(f"the project's export has no work of {username!r}: is {username} a member of the project?")
    return {row["id"] for row in rows if row.get("entities")}


def bounded_map(pool: ThreadPoolExecutor, fn: Callable[[Item], Result], items: Iterable[Item], window: int) -> Iterator[tuple[Item, Result]]:
    """`fn` over `items` in `pool`, yielding (item, result) in input order.

    At most `window` tasks are in flight, so a lazy `items` (the model's docs) is consumed
    only as fast as the server takes the writes, and the first failure stops the rest:
    tasks not started are cancelled, started ones finish.
    """
    pending: deque[tuple[Item, Future[Result]]] = deque()
    try:
        for item in items:
            pending.append((item, pool.submit(fn, item)))
            if len(pending) >= window:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise


def mark(model_name: str, example: Example) -> str:
    """The comment that names the model and tells the annotator what to do."""
    return (
        f"{PREANNOTATION_MARK} by {model_name}: {len(example.spans)} spans, {len(example.relations)} relations "
        "(each with prob > 0). Correct them, then confirm the example."
    )


def _spans_present(
    client: DoccanoClient, admin: DoccanoClient | None, pid: int, candidates: list[int], username: str, pool: ThreadPoolExecutor
) -> set[int]:
    """Which of `candidates` already have `username`'s spans: one export if an admin can
    make it, else one span read per candidate; nothing to read when there is no candidate
    (a re-run after everything was pre-annotated)."""
    if not candidates:
        return set()
    if admin is not None:
        try:
            records = read_export_zip(io.BytesIO(admin.export_bytes(pid)), f"export of project {pid}")
        except ExportFormatError as err:  # the server's answer, not a file of the user's: a Doccano failure
            raise DoccanoError(str(err)) from err
        return examples_with_spans(records, username) & set(candidates)
    found = pool.map(lambda eid: bool(client.spans(pid, eid)), candidates)
    return {eid for eid, has in zip(candidates, found) if has}


def preannotate(
    client: DoccanoClient,
    name: str,
    nlp: Language,
    schema: Schema,
    model_name: str,
    paragraph_ids: Iterable[str] | None = None,
    batch_size: int = 8,
    progress: Progress | None = None,
    *,
    admin: DoccanoClient | None = None,
    workers: int = DEFAULT_WORKERS,
) -> PreannotateReport:
    """Enter a pipeline's predictions as the logged-in annotator's spans, for them to correct.

    Suggestions appear in the annotator's own view, marked three ways: `prob` > 0 on every
    span and relation (the model's score; the UI writes 0.0), a comment on the example
    naming the model, and the example left unconfirmed. An example where the annotator
    already has spans, has confirmed, or was pre-annotated before is skipped: an
    annotator's work is never overwritten or doubled. `admin` (a project admin's client)
    lets the annotator's spans be read in one export; `workers` bounds the writing threads.
    """
    pid, span_types, relation_types, by_paragraph = project_maps(client, name, schema)
    wanted = list(dict.fromkeys(by_paragraph if paragraph_ids is None else paragraph_ids))
    missing = sorted(set(wanted) - set(by_paragraph))
    if missing:
        raise DoccanoError(f"{len(missing)} paragraph(s) are not in project {name!r} ({', '.join(missing[:5])}); push them first")
    me = client.me()["username"]
    targets = [by_paragraph[key] for key in wanted]
    marked = marked_examples(client.comments(pid, search=PREANNOTATION_MARK), me)
    candidates = [t["id"] for t in targets if not t["is_confirmed"] and t["id"] not in marked]
    report = PreannotateReport()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="preannotate") as pool:
        worked = _spans_present(client, admin, pid, candidates, me, pool)
        open_ids = set(candidates) - worked
        todo = [t for t in targets if t["id"] in open_ids]
        report.skipped = len(targets) - len(todo)
        docs = nlp.pipe((t["text"] for t in todo), batch_size=batch_size)
        jobs = ((target, suggestion(doc, schema)) for target, doc in zip(todo, docs))

        def post(job: tuple[dict, Suggestion]) -> None:
            target, found = job
            ex = found.example
            index = {s.id: i for i, s in enumerate(ex.spans)}
            create_annotation(
                client, pid, target["id"], ex.text,
                [(s.start, s.end, s.label) for s in ex.spans],
                [(index[r.head], index[r.child], r.label) for r in ex.relations],
                span_types, relation_types, found.span_probs, found.relation_probs,
            )  # fmt: skip
            client.create_comment(pid, target["id"], mark(model_name, ex))

        for done, ((target, found), _) in enumerate(bounded_map(pool, post, jobs, 2 * workers), start=1):
            ex = found.example
            ex.meta = {**(target.get("meta") or {}), "model": model_name, "span_probs": found.span_probs,
                       "relation_probs": found.relation_probs}  # fmt: skip
            report.suggestions.append(to_doccano(ex))
            report.preannotated += 1
            report.spans += len(ex.spans)
            report.relations += len(ex.relations)
            if progress:
                progress(done, len(todo))
    return report
