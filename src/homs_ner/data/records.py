"""The project's neutral annotation record, and Doccano's JSON on either side of it.

Doccano (export JSONL and REST API), Prodigy JSONL and spaCy Docs all describe the same
thing: a text with labelled character spans and relations between them. `Example` is that
thing with Python string offsets. Doccano counts offsets in UTF-16 code units (JavaScript);
the conversion happens here and only here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

# Keys of a Doccano record that are not example meta (export flattens meta to the top level).
DOCCANO_RESERVED = {"id", "text", "entities", "label", "relations", "Comments", "comments", "meta"}
INT_META_KEYS = ("paragraph", "start", "end")


@dataclass(frozen=True)
class Origin:
    """Where a record came from, for error messages: file, line and example id."""

    file: str = "<memory>"
    line: int | None = None
    example: str | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return where if self.example is None else f"{where} (example {self.example})"


@dataclass(frozen=True)
class Span:
    """A labelled character span; `label` is the Doccano label (ACTOR, CLAUSE:EVACUATION)."""

    start: int
    end: int
    label: str
    id: str


@dataclass(frozen=True)
class Relation:
    """A directed relation between two span ids of the same example."""

    head: str
    child: str
    label: str


@dataclass
class Example:
    """One annotated text: a paragraph from Doccano, or a whole article once merged."""

    text: str
    spans: list[Span] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    annotator: str | None = None
    origin: Origin = field(default_factory=Origin)

    def span_by_id(self) -> dict[str, Span]:
        return {s.id: s for s in self.spans}

    def key(self) -> str:
        """What identifies the example across files: its paragraph id, else its text."""
        return str(self.meta.get("paragraph_id") or self.meta.get("article_id") or self.text)


class RecordError(ValueError):
    """A record is structurally unusable (no text, wrong types); names its origin."""

    def __init__(self, origin: Origin, reason: str):
        super().__init__(f"{origin}: {reason}")
        self.origin, self.reason = origin, reason


# --- offsets --------------------------------------------------------------------------------


def utf16_to_python(text: str) -> list[int | None]:
    """Map each UTF-16 offset (0..len) to a Python index; None inside a surrogate pair."""
    mapping: list[int | None] = []
    for i, char in enumerate(text):
        mapping.append(i)
        if ord(char) > 0xFFFF:
            mapping.append(None)
    mapping.append(len(text))
    return mapping


def python_to_utf16(text: str) -> list[int]:
    """Map each Python index (0..len) to its UTF-16 offset."""
    mapping, unit = [], 0
    for char in text:
        mapping.append(unit)
        unit += 2 if ord(char) > 0xFFFF else 1
    mapping.append(unit)
    return mapping


# --- Doccano -> Example ---------------------------------------------------------------------


def _coerce_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """Undo pandas' int -> float coercion in Doccano exports (3.0 -> 3)."""
    out = dict(meta)
    for key in INT_META_KEYS:
        value = out.get(key)
        if isinstance(value, float) and value.is_integer():
            out[key] = int(value)
    return out


def _doccano_spans(record: dict, origin: Origin) -> list[dict]:
    """Spans of either export flavour: `entities` dicts, or `label` [start, end, label] triples."""
    if "entities" in record:
        spans = record["entities"]
        if not isinstance(spans, list) or not all(isinstance(s, dict) for s in spans):
            raise RecordError(origin, "`entities` must be a list of objects")
        return spans
    triples = record.get("label", [])
    if not isinstance(triples, list) or not all(isinstance(t, list) and len(t) == 3 for t in triples):
        raise RecordError(origin, "`label` must be a list of [start, end, label] triples")
    return [{"id": f"t{i}", "start_offset": s, "end_offset": e, "label": lab} for i, (s, e, lab) in enumerate(triples)]


def _offset(raw: dict, key: str, origin: Origin) -> int:
    """An offset exactly as an integer: 5.9, "37" or true are errors, not silently coerced to 5, 37, 1."""
    value = raw.get(key)
    if type(value) is not int:
        raise RecordError(origin, f"span {raw.get('id', '?')}: {key} must be an integer, got {json.dumps(value)}")
    return value


def from_doccano(record: dict, origin: Origin, annotator: str | None = None) -> Example:
    """Parse one Doccano record. Offsets stay in UTF-16 units until `validation` maps them.

    Meta may be nested (`meta`, as uploaded) or flattened to the top level (as exported).
    """
    text = record.get("text")
    if not isinstance(text, str):
        raise RecordError(origin, "record has no `text` string")
    meta = dict(record["meta"]) if isinstance(record.get("meta"), dict) else {}
    meta.update({k: v for k, v in record.items() if k not in DOCCANO_RESERVED})
    spans = []
    for raw in _doccano_spans(record, origin):
        start, end = _offset(raw, "start_offset", origin), _offset(raw, "end_offset", origin)
        try:
            spans.append(Span(start, end, str(raw["label"]), str(raw["id"])))
        except (KeyError, TypeError, ValueError) as err:
            raise RecordError(origin, f"malformed span {raw!r}: {err}") from err
    relations = []
    for raw in record.get("relations") or []:
        try:
            relations.append(Relation(str(raw["from_id"]), str(raw["to_id"]), str(raw["type"])))
        except (KeyError, TypeError) as err:
            raise RecordError(origin, f"malformed relation {raw!r}: {err}") from err
    example_id = record.get("id")
    origin = replace(origin, example=str(example_id) if example_id is not None else origin.example)
    return Example(text, spans, relations, _coerce_meta(meta), annotator, origin)


# --- Example -> Doccano ---------------------------------------------------------------------


def to_doccano(example: Example, flatten_meta: bool = False) -> dict:
    """A Doccano JSONL record (UTF-16 offsets, integer ids) for upload or comparison.

    `flatten_meta=True` gives the export layout (meta keys at the top level).
    """
    units = python_to_utf16(example.text)
    ids = {s.id: i for i, s in enumerate(example.spans, start=1)}
    record: dict[str, Any] = {
        "text": example.text,
        "entities": [
            {"id": ids[s.id], "label": s.label, "start_offset": units[s.start], "end_offset": units[s.end]}
            for s in example.spans
        ],
        "relations": [
            {"id": i, "from_id": ids[r.head], "to_id": ids[r.child], "type": r.label}
            for i, r in enumerate(example.relations, start=1)
        ],
    }
    if flatten_meta:
        record.update(example.meta)
    else:
        record["meta"] = dict(example.meta)
    return record
