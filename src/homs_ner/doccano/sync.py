"""Push the schema, guidelines and paragraphs to a Doccano project; pull annotators' work back.

`push` is idempotent: the project is found by name, label types are matched by text (and
updated when the schema changed their colour or key), and examples by `paragraph_id` meta,
so pushing twice creates no duplicates. Two pushes at the same time would both see a
paragraph missing and both upload it: pushes to one project from this machine take a lock,
and any push removes duplicates that exist anyway (from another machine, or from before the
lock), keeping each paragraph's first example. A paragraph whose text changed since it was pushed
is an error rather than an overwrite: annotations on the old text would silently shift.

`pull` uses Doccano's JSONL export (through the REST API): it is the only read that returns
every annotator's spans and relations in a non-collaborative project (the span list API shows
an admin only the admin's own). The raw zip is kept next to one `<annotator>.jsonl` per
annotator, and both are inputs `homs-ner convert` accepts.
"""

from __future__ import annotations

import fcntl
import hashlib
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from homs_ner.data.colors import text_color_for
from homs_ner.data.corpus import Paragraph
from homs_ner.data.io import atomic_write_bytes, export_members
from homs_ner.data.records import Example, python_to_utf16
from homs_ner.data.schema import LabelInfo, Schema
from homs_ner.doccano.accounts import add_annotator
from homs_ner.doccano.client import DoccanoClient
from homs_ner.doccano.types import DoccanoError

Progress = Callable[[int, int], None]


@dataclass
class PushReport:
    project_id: int
    created_project: bool
    label_types_created: int
    label_types_updated: int
    examples_created: int
    examples_existing: int
    duplicates_removed: int = 0


@contextmanager
def push_lock(url: str, project: str) -> Iterator[None]:
    """An exclusive lock per (server, project) on this machine, held for a whole push.

    A file lock (flock) in the temporary folder: released by the kernel when the process
    dies, so a killed push never leaves it stuck.
    """
    key = hashlib.sha256(f"{url.rstrip('/')}|{project}".encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"homs-ner-push-{key}.lock"
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_duplicates(client: DoccanoClient, pid: int, examples: Iterable[dict]) -> tuple[dict[str, dict], int]:
    """Examples by paragraph id, and how many later copies of a paragraph (same text) were deleted.

    The first (lowest id) is kept: it is the one Doccano shows first and annotators reach first.
    """
    kept: dict[str, dict] = {}
    removed = 0
    for example in sorted(examples, key=lambda e: e["id"]):
        key = (example.get("meta") or {}).get("paragraph_id")
        if not key:
            continue
        if key not in kept:
            kept[key] = example
        elif kept[key]["text"] == example["text"]:
            client.delete_example(pid, example["id"])
            removed += 1
    return kept, removed


def _label_fields(label: LabelInfo) -> dict:
    return {"background_color": label.color, "text_color": text_color_for(label.color), "suffix_key": label.key}


def _sync_label_types(
    existing: list[dict],
    wanted: Sequence[LabelInfo],
    create: Callable[..., dict],
    update: Callable[..., dict],
    old_names: dict[str, str] | None = None,
) -> tuple[int, int]:
    """Create missing label types and update changed ones; return (created, updated).

    A type still under its old name (`old_names`: new -> old, e.g. EVACUATION ->
    CLAUSE:EVACUATION) is renamed in place: spans point at the type's id, so the work
    already done keeps its label.
    """
    by_text = {t["text"]: t for t in existing}
    created = updated = 0
    for label in wanted:
        fields = {"text": label.name, **_label_fields(label)}
        current = by_text.get(label.name) or by_text.get((old_names or {}).get(label.name, ""))
        if current is None:
            create(**fields)
            created += 1
        elif any(current.get(k) != v for k, v in fields.items()):
            update(current["id"], **fields)
            updated += 1
    return created, updated


def ensure_project(client: DoccanoClient, name: str, schema: Schema, guideline: str) -> tuple[int, bool, int, int]:
    """Find or create the project and bring its guideline and label types up to date."""
    description = "homs-ner: actors, places, quantities, dates, agreement clauses and relations (Arabic news, Homs 2012-2017)"
    project = client.find_project(name)
    created = project is None
    if project is None:
        project = client.create_project(name, description, guideline, allow_overlapping=True, use_relation=True)
    elif project.get("guideline") != guideline:
        client.update_project(project["id"], guideline=guideline)
    pid = project["id"]
    span_c, span_u = _sync_label_types(
        client.span_types(pid),
        schema.doccano_span_labels,
        lambda **kw: client.create_span_type(pid, **kw),
        lambda tid, **kw: client.update_span_type(pid, tid, **kw),
        {t: schema.doccano_clause_label(t) for t in schema.clause_labels},
    )
    rel_c, rel_u = _sync_label_types(
        client.relation_types(pid),
        schema.relations,
        lambda **kw: client.create_relation_type(pid, **kw),
        lambda tid, **kw: client.update_relation_type(pid, tid, **kw),
    )
    return pid, created, span_c + rel_c, span_u + rel_u


def push(
    client: DoccanoClient,
    name: str,
    schema: Schema,
    guideline: str,
    paragraphs: Sequence[Paragraph],
    progress: Progress | None = None,
) -> PushReport:
    """Create or update the project and upload the paragraphs that are not there yet.

    Holds `push_lock` for the server and project; repairs duplicates found (see the module doc).
    """
    with push_lock(client.base_url, name):
        return _push(client, name, schema, guideline, paragraphs, progress)


def _push(
    client: DoccanoClient,
    name: str,
    schema: Schema,
    guideline: str,
    paragraphs: Sequence[Paragraph],
    progress: Progress | None,
) -> PushReport:
    pid, created, types_created, types_updated = ensure_project(client, name, schema, guideline)
    existing, duplicates = _remove_duplicates(client, pid, client.examples(pid))
    changed = [p.id for p in paragraphs if p.id in existing and existing[p.id]["text"] != p.text]
    if changed:
        raise DoccanoError(
            f"{len(changed)} paragraph(s) changed text since they were pushed ({', '.join(changed[:5])}); "
            "their annotations would shift. Push to a new project instead."
        )
    for p in paragraphs:  # meta gained title, outlet and date: bring pushed examples up to date
        if p.id in existing and existing[p.id].get("meta") != p.meta:
            client.update_example(pid, existing[p.id]["id"], meta=p.meta)
    todo = [p for p in paragraphs if p.id not in existing]
    for done, paragraph in enumerate(todo, start=1):
        client.create_example(pid, paragraph.text, paragraph.meta)
        if progress:
            progress(done, len(todo))
    return PushReport(pid, created, types_created, types_updated, len(todo), len(paragraphs) - len(todo), duplicates)


def pull(client: DoccanoClient, name: str, out_dir: Path, timeout: float = 300.0) -> dict[str, Path]:
    """Export the project (every annotator), keep the raw zip, write `<annotator>.jsonl` files.

    Returns annotator -> written JSONL path. Writes are atomic; an existing file of the
    same annotator is replaced only after the new export was read completely.
    """
    project = client.find_project(name)
    if project is None:
        raise DoccanoError(f"no Doccano project named {name!r}; push it first with `homs-ner doccano push`")
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    zip_path = client.export(project["id"], out_dir / "exports")
    kept = out_dir / "exports" / f"{name}-{stamp}.zip"
    zip_path.replace(kept)
    written = {}
    contents = {Path(member).stem: data for member, data in export_members(kept).items()}
    for annotator, data in contents.items():
        target = out_dir / f"{annotator}.jsonl"
        atomic_write_bytes(target, data if data.strip() else b"")
        written[annotator] = target
    return written


def create_annotation(
    client: DoccanoClient,
    project_id: int,
    example_id: int,
    text: str,
    spans: Sequence[tuple[int, int, str]],
    relations: Sequence[tuple[int, int, str]],
    span_types: dict[str, int],
    relation_types: dict[str, int],
    span_probs: Sequence[float] | None = None,
    relation_probs: Sequence[float] | None = None,
) -> list[int]:
    """Write spans (Python offsets) and relations (indices into `spans`) as the logged-in user.

    `span_types` maps schema labels to type ids (see `span_type_ids`).
    Offsets are converted to the UTF-16 units Doccano counts in. `*_probs` are a model's
    scores (human work leaves them 0.0). Returns the new span ids.
    """
    units = python_to_utf16(text)
    span_probs = span_probs or [0.0] * len(spans)
    relation_probs = relation_probs or [0.0] * len(relations)
    ids = [
        client.create_span(project_id, example_id, units[s], units[e], span_types[label], prob)["id"]
        for (s, e, label), prob in zip(spans, span_probs)
    ]
    for (head, child, label), prob in zip(relations, relation_probs):
        client.create_relation(project_id, example_id, ids[head], ids[child], relation_types[label], prob)
    return ids


@dataclass
class AnnotateReport:
    annotated: int
    skipped: int


def member_client(admin: DoccanoClient, project: str, username: str, password: str) -> DoccanoClient:
    """A client logged in as `username`, made an annotator of `project` first (the account
    is created if missing), so that the work it enters is that annotator's own."""
    add_annotator(admin, project, username, password)
    return DoccanoClient.login(admin.base_url, username, password)


def span_type_ids(client: DoccanoClient, pid: int, schema: Schema) -> dict[str, int]:
    """Span type ids by schema label (CLAUSE:EVACUATION), whatever name Doccano shows."""
    return {schema.canonical_span_label(t["text"]) or t["text"]: t["id"] for t in client.span_types(pid)}


def project_maps(
    client: DoccanoClient, name: str, schema: Schema
) -> tuple[int, dict[str, int], dict[str, int], dict[str, dict]]:
    """Project id, span (by schema label) and relation type ids, and examples by paragraph id."""
    project = client.find_project(name)
    if project is None:
        raise DoccanoError(f"no Doccano project named {name!r}; push it first with `homs-ner doccano push`")
    pid = project["id"]
    span_types = span_type_ids(client, pid, schema)
    relation_types = {t["text"]: t["id"] for t in client.relation_types(pid)}
    by_paragraph = {(e.get("meta") or {}).get("paragraph_id"): e for e in client.examples(pid)}
    return pid, span_types, relation_types, by_paragraph


def annotate(
    client: DoccanoClient, name: str, schema: Schema, examples: Sequence[Example], progress: Progress | None = None
) -> AnnotateReport:
    """Enter examples (Python offsets) as the logged-in user's spans and relations, then confirm.

    Idempotent: an example where this user already has spans is skipped, never doubled.
    """
    pid, span_types, relation_types, by_paragraph = project_maps(client, name, schema)
    missing = sorted({str(ex.meta.get("paragraph_id")) for ex in examples} - set(by_paragraph))
    if missing:
        raise DoccanoError(f"{len(missing)} paragraph(s) are not in project {name!r} ({', '.join(missing[:5])}); push them first")
    annotated = skipped = 0
    for done, ex in enumerate(examples, start=1):
        target = by_paragraph[ex.meta["paragraph_id"]]
        if client.spans(pid, target["id"]):
            skipped += 1
        else:
            index = {s.id: i for i, s in enumerate(ex.spans)}
            create_annotation(
                client, pid, target["id"], ex.text,
                [(s.start, s.end, s.label) for s in ex.spans],
                [(index[r.head], index[r.child], r.label) for r in ex.relations],
                span_types, relation_types,
            )
            client.set_confirmed(pid, target["id"], True)
            annotated += 1
        if progress:
            progress(done, len(examples))
    return AnnotateReport(annotated, skipped)
