"""Lossless conversion between validated `Example`s, Prodigy JSONL and spaCy Docs.

spaCy layout (documented in the README):
- entities in `doc.ents`;
- clauses in `doc.spans[<span_group>]` (`clauses`), labelled with the bare type (EVACUATION);
- relations in `doc._.relations`, a list of
  `{"head": {"start", "end", "label"}, "child": {...}, "label"}` with character offsets and
  Doccano-style span labels (ACTOR, CLAUSE:EVACUATION). Extension values live in
  `doc.user_data`, which `DocBin(store_user_data=True)` keeps, so relations survive a DocBin
  round trip; character offsets do not depend on the tokenizer;
- `doc.user_data["meta"]`: article id, source, split, annotator, paragraphs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc, Span as SpacySpan

from homs_ner.data.records import Example, Origin, Relation, Span
from homs_ner.data.schema import Schema
from homs_ner.data.validation import Problem

if not Doc.has_extension("relations"):
    Doc.set_extension("relations", default=None)


def doc_meta(doc: Doc) -> dict:
    """The doc's metadata (article id, split, source ...), empty when it has none."""
    return doc.user_data.get("meta") or {}


def relations_of(doc: Doc) -> list[dict]:
    """The doc's relations (an empty list when none were set)."""
    return list(doc._.relations or [])


# --- Example <-> spaCy Doc ------------------------------------------------------------------


def _span_ref(span: Span) -> dict:
    return {"start": span.start, "end": span.end, "label": span.label}


def example_to_doc(nlp: Language, example: Example, schema: Schema) -> Doc:
    """Build a Doc from a validated example (spans already on whole tokens)."""
    doc = nlp.make_doc(example.text)
    ents, clauses = [], []
    for span in example.spans:
        kind, label = schema.parse_span_label(span.label)  # type: ignore[misc]
        token_span = doc.char_span(span.start, span.end, label=label)
        if token_span is None:
            raise ValueError(f"{example.origin}: span {span.id} is not on token boundaries; validate first")
        (ents if kind == "entity" else clauses).append(token_span)
    doc.ents = sorted(ents, key=lambda s: s.start)
    doc.spans[schema.span_group] = sorted(clauses, key=lambda s: (s.start, s.end))
    by_id = example.span_by_id()
    doc._.relations = [
        {"head": _span_ref(by_id[r.head]), "child": _span_ref(by_id[r.child]), "label": r.label}
        for r in example.relations
    ]
    doc.user_data["meta"] = {**example.meta, "annotator": example.annotator}
    return doc


def doc_spans(doc: Doc, schema: Schema) -> list[tuple[SpacySpan, str]]:
    """Every entity and clause of a doc with its Doccano-style label, in text order."""
    pairs = [(e, e.label_) for e in doc.ents]
    pairs += [(c, schema.doccano_clause_label(c.label_)) for c in doc.spans.get(schema.span_group, [])]
    return sorted(pairs, key=lambda p: (p[0].start_char, p[0].end_char, p[1]))


def doc_to_example(doc: Doc, schema: Schema, origin: Origin | None = None) -> Example:
    """The inverse of `example_to_doc`; span ids are assigned in text order."""
    spans = [
        Span(s.start_char, s.end_char, label, f"s{i}") for i, (s, label) in enumerate(doc_spans(doc, schema))
    ]
    index = {(s.start, s.end, s.label): s.id for s in spans}
    relations = []
    for rel in relations_of(doc):
        head = index.get((rel["head"]["start"], rel["head"]["end"], rel["head"]["label"]))
        child = index.get((rel["child"]["start"], rel["child"]["end"], rel["child"]["label"]))
        if head is None or child is None:
            raise ValueError(f"relation {rel} refers to a span the doc does not have")
        relations.append(Relation(head, child, rel["label"]))
    meta = dict(doc_meta(doc))
    annotator = meta.pop("annotator", None)
    return Example(doc.text, spans, relations, meta, annotator, origin or Origin())


# --- paragraphs -> article ------------------------------------------------------------------


def paragraph_fits(article_text: str, part: Example) -> bool:
    """Whether the paragraph's meta `start`/`end` (integers) point at its own text in the article."""
    start, end = part.meta.get("start"), part.meta.get("end")
    return type(start) is int and type(end) is int and article_text[start:end] == part.text


def merge_paragraphs(article_id: str, article_text: str, parts: Sequence[Example]) -> tuple[Example, list[Problem]]:
    """Rebuild the article-level example from its annotated paragraphs (offsets from meta)."""
    problems: list[Problem] = []
    spans: list[Span] = []
    relations: list[Relation] = []
    for part in sorted(parts, key=lambda p: p.meta.get("start", 0)):
        start, end = part.meta.get("start"), part.meta.get("end")
        if not paragraph_fits(article_text, part):
            problems.append(Problem("error", part.origin, f"paragraph text does not match article {article_id} at [{start}, {end})"))
            continue
        prefix = f"{part.meta.get('paragraph', start)}:"
        spans += [replace(s, start=s.start + start, end=s.end + start, id=prefix + s.id) for s in part.spans]
        relations += [Relation(prefix + r.head, prefix + r.child, r.label) for r in part.relations]
    first = parts[0] if parts else Example(article_text)
    meta = {k: first.meta[k] for k in ("source", "split") if k in first.meta}
    meta.update(article_id=article_id, paragraphs=[p.meta.get("paragraph_id") for p in parts])
    origin = Origin(first.origin.file, None, article_id)
    return Example(article_text, spans, relations, meta, first.annotator, origin), problems


# --- Example <-> Prodigy JSONL --------------------------------------------------------------


def _hash(*parts: Any) -> int:
    """A stable 32-bit signed hash, like Prodigy's `_input_hash`/`_task_hash` (not its exact values)."""
    digest = hashlib.md5(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little", signed=True)


def _prodigy_span(doc: Doc, span: Span) -> dict:
    token_span = doc.char_span(span.start, span.end)
    if token_span is None:
        raise ValueError(f"span {span.id} is not on token boundaries; validate first")
    return {
        "start": span.start,
        "end": span.end,
        "token_start": token_span.start,
        "token_end": token_span.end - 1,
        "label": span.label,
    }


def example_to_prodigy(nlp: Language, example: Example) -> dict:
    """A Prodigy-style task: tokens, spans (entities and clauses), relations, meta, hashes.

    As in Prodigy's `rel.manual`, a relation's `head`/`child` are the last token index of
    the head/child span, with the spans themselves in `head_span`/`child_span`.
    """
    doc = nlp.make_doc(example.text)
    tokens = [
        {"text": t.text, "start": t.idx, "end": t.idx + len(t.text), "id": t.i, "ws": bool(t.whitespace_)}
        for t in doc
    ]
    spans = {s.id: _prodigy_span(doc, s) for s in example.spans}
    relations = [
        {
            "head": spans[r.head]["token_end"],
            "child": spans[r.child]["token_end"],
            "head_span": spans[r.head],
            "child_span": spans[r.child],
            "label": r.label,
        }
        for r in example.relations
    ]
    input_hash = _hash(example.text)
    task = {
        "text": example.text,
        "tokens": tokens,
        "spans": list(spans.values()),
        "relations": relations,
        "meta": dict(example.meta),
        "answer": "accept",
        "_input_hash": input_hash,
    }
    task["_task_hash"] = _hash(input_hash, task["spans"], relations)
    if example.annotator:
        task["_annotator_id"] = example.annotator
    return task


def prodigy_to_example(task: dict, origin: Origin) -> Example:
    """Read a Prodigy task back (Python offsets); relations match spans by offsets and label."""
    spans, index = [], {}
    for i, raw in enumerate(task.get("spans") or []):
        span = Span(int(raw["start"]), int(raw["end"]), str(raw["label"]), f"s{i}")
        spans.append(span)
        index[(span.start, span.end, span.label)] = span.id
    relations = []
    for raw in task.get("relations") or []:
        head = index.get((raw["head_span"]["start"], raw["head_span"]["end"], raw["head_span"]["label"]))
        child = index.get((raw["child_span"]["start"], raw["child_span"]["end"], raw["child_span"]["label"]))
        relations.append(Relation(head or "<missing>", child or "<missing>", str(raw["label"])))
    return Example(task["text"], spans, relations, dict(task.get("meta") or {}), task.get("_annotator_id"), origin)


def canonical(example: Example) -> tuple:
    """An id-free, order-free view of an example: what a lossless round trip must preserve."""
    by_id = example.span_by_id()

    def ref(span_id: str) -> tuple[int, int, str]:
        s = by_id[span_id]
        return (s.start, s.end, s.label)

    return (
        example.text,
        tuple(sorted((s.start, s.end, s.label) for s in example.spans)),
        tuple(sorted((ref(r.head), ref(r.child), r.label) for r in example.relations)),
    )
