"""Validation of annotation records: every problem is reported, nothing is dropped silently.

Each check yields `Problem`s naming file, line, example and reason. Errors make the
conversion fail (after all of them have been collected, so an annotator sees the whole list
at once); warnings record a repair that was made (a partial-token span expanded to whole
tokens, as the guidelines' whole-token convention says).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING, Literal

from homs_ner.data.corpus import MAX_PARAGRAPH_CHARS
from homs_ner.data.records import Example, Origin, Relation, Span, utf16_to_python
from homs_ner.data.schema import CLAUSE_KIND, Schema

if TYPE_CHECKING:  # spaCy is imported by the callers that pass its objects: the CLI stays light
    from spacy.language import Language
    from spacy.tokens import Doc, Span as SpacySpan

OffsetUnit = Literal["utf16", "python"]


class TokenPolicy(str, Enum):
    """What to do with a span that starts or ends inside a token."""

    expand = "expand"
    reject = "reject"


class PartialPolicy(str, Enum):
    """What `convert` does with an article whose records cover only some of its paragraphs."""

    exclude = "exclude"
    error = "error"


@dataclass(frozen=True)
class Problem:
    """One validation finding."""

    level: Literal["error", "warning"]
    origin: Origin
    reason: str

    def __str__(self) -> str:
        return f"{self.level}: {self.origin}: {self.reason}"


class ValidationFailed(ValueError):
    """Raised with every error found, after the whole input was checked."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        errors = [p for p in self.problems if p.level == "error"]
        shown = "\n".join(f"  {p}" for p in errors[:50])
        more = f"\n  ... and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__(f"{len(errors)} validation error(s):\n{shown}{more}")


def _err(origin: Origin, reason: str) -> Problem:
    return Problem("error", origin, reason)


def _warn(origin: Origin, reason: str) -> Problem:
    return Problem("warning", origin, reason)


def _span_text(text: str, span: Span) -> str:
    return text[span.start : span.end].replace("\n", " ")


def _map_offsets(example: Example, unit: OffsetUnit, out: list[Problem]) -> list[Span]:
    """Python offsets for every span with a sane range; bad ones become errors."""
    mapping = utf16_to_python(example.text) if unit == "utf16" else None
    limit = len(mapping) - 1 if mapping else len(example.text)
    spans = []
    for span in example.spans:
        where = f"span {span.id} [{span.start}, {span.end}) {span.label}"
        if span.start < 0 or span.end > limit:
            out.append(_err(example.origin, f"{where}: offsets out of range (text has {limit} {unit} units)"))
            continue
        if span.start >= span.end:
            out.append(_err(example.origin, f"{where}: start is not before end"))
            continue
        start, end = (mapping[span.start], mapping[span.end]) if mapping else (span.start, span.end)
        if start is None or end is None:
            out.append(_err(example.origin, f"{where}: offset falls inside a UTF-16 surrogate pair"))
            continue
        spans.append(replace(span, start=start, end=end))
    return spans


def _trim_punct(tokens: SpacySpan) -> SpacySpan | None:
    """The span without punctuation tokens at its edges (None if nothing else is left)."""
    start, end = tokens.start, tokens.end
    while start < end and tokens.doc[start].is_punct:
        start += 1
    while end > start and tokens.doc[end - 1].is_punct:
        end -= 1
    return tokens.doc[start:end] if end > start else None


def _align(doc: Doc, span: Span, policy: TokenPolicy, origin: Origin, out: list[Problem]) -> Span | None:
    """Snap a span to whole tokens; whitespace and punctuation tokens at its edges are left out.

    The guidelines keep punctuation and quote marks outside spans; a span that includes them
    is repaired with a warning, like a span that cuts a token under the `expand` policy.
    """
    text = doc.text
    start, end = span.start, span.end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start == end:
        out.append(_err(origin, f"span {span.id} {span.label} covers only whitespace"))
        return None
    tokens = doc.char_span(start, end)
    if tokens is None:
        expanded = doc.char_span(start, end, alignment_mode="expand")
        partial = f"span {span.id} {span.label} «{text[start:end]}» does not cover whole tokens"
        if policy is TokenPolicy.reject or expanded is None:
            out.append(_err(origin, partial))
            return None
        out.append(_warn(origin, f"{partial}; expanded to «{expanded.text}»"))
        tokens = expanded
    elif (start, end) != (span.start, span.end):
        out.append(_warn(origin, f"span {span.id} {span.label}: surrounding whitespace trimmed"))
    trimmed = _trim_punct(tokens)
    if trimmed is None:
        out.append(_err(origin, f"span {span.id} {span.label} «{tokens.text}» covers only punctuation"))
        return None
    if trimmed != tokens:
        out.append(_warn(origin, f"span {span.id} {span.label} «{tokens.text}»: punctuation at its edge left outside"))
    return replace(span, start=trimmed.start_char, end=trimmed.end_char)


def _check_labels(spans: Iterable[Span], schema: Schema, origin: Origin, out: list[Problem]) -> list[Span]:
    """Known spans, labelled as the schema names them: Doccano's bare clause names
    (EVACUATION) become CLAUSE:EVACUATION here, so everything downstream sees one name."""
    known = []
    for span in spans:
        label = schema.canonical_span_label(span.label)
        if label is None:
            out.append(_err(origin, f"span {span.id}: unknown label {span.label!r}"))
        else:
            known.append(replace(span, label=label))
    return known


def _check_overlaps(text: str, spans: list[Span], schema: Schema, origin: Origin, out: list[Problem]) -> None:
    """Entities never overlap; clauses never overlap; a clause contains an entity wholly or not at all."""
    kinds = {s.id: schema.parse_span_label(s.label)[0] for s in spans}  # type: ignore[index]
    ordered = sorted(spans, key=lambda s: (s.start, s.end))
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            if b.start >= a.end:
                break
            ka, kb = kinds[a.id], kinds[b.id]
            pair = f"{a.label} «{_span_text(text, a)}» and {b.label} «{_span_text(text, b)}»"
            if ka == kb == "entity":
                out.append(_err(origin, f"overlapping entities {pair}"))
            elif ka == kb == "clause":
                out.append(_err(origin, f"a clause overlaps a clause: {pair}"))
            else:
                clause, entity = (a, b) if ka == "clause" else (b, a)
                if not (clause.start <= entity.start and entity.end <= clause.end):
                    out.append(_err(origin, f"entity crosses a clause boundary: {pair}"))


def _check_relations(example: Example, spans: list[Span], schema: Schema, out: list[Problem]) -> list[Relation]:
    by_id = {s.id: s for s in spans}
    known_ids = {s.id for s in example.spans}
    seen, kept = set(), []
    for rel in example.relations:
        where = f"relation {rel.label} {rel.head} -> {rel.child}"
        if rel.label not in schema.relation_labels:
            out.append(_err(example.origin, f"{where}: unknown relation label {rel.label!r}"))
            continue
        missing = [i for i in (rel.head, rel.child) if i not in by_id]
        if missing:
            why = "refers to a span that failed validation" if set(missing) <= known_ids else "refers to a missing span"
            out.append(_err(example.origin, f"{where}: {why} ({', '.join(missing)})"))
            continue
        if rel.head == rel.child:
            out.append(_err(example.origin, f"{where}: a span related to itself"))
            continue
        head_kind, head_label = schema.parse_span_label(by_id[rel.head].label)  # type: ignore[misc]
        child_kind, child_label = schema.parse_span_label(by_id[rel.child].label)  # type: ignore[misc]
        hk = CLAUSE_KIND if head_kind == "clause" else head_label
        ck = CLAUSE_KIND if child_kind == "clause" else child_label
        if not schema.relation_allowed(rel.label, hk, ck):
            out.append(_err(example.origin, f"{where}: the schema does not allow {rel.label} from {hk} to {ck}"))
            continue
        if rel in seen:
            out.append(_warn(example.origin, f"{where}: duplicate relation kept once"))
            continue
        seen.add(rel)
        kept.append(rel)
    return kept


def _dedupe_spans(spans: list[Span], origin: Origin, out: list[Problem]) -> list[Span]:
    ids: set[str] = set()
    unique = []
    for span in spans:
        if span.id in ids:
            out.append(_err(origin, f"span id {span.id} used twice"))
            continue
        ids.add(span.id)
        unique.append(span)
    return unique


def check_example(
    example: Example,
    schema: Schema,
    nlp: Language,
    *,
    offsets: OffsetUnit = "utf16",
    tokens: TokenPolicy = TokenPolicy.expand,
) -> tuple[Example, list[Problem]]:
    """Validate one example; return it with Python offsets on whole tokens, and the problems.

    The returned example keeps only spans and relations that passed; any error makes the
    input as a whole fail in `raise_on_errors`, so nothing is dropped without a report.
    """
    out: list[Problem] = []
    origin = example.origin
    if not example.text.strip():
        return example, [_err(origin, "empty text")]
    if "\r" in example.text:
        return example, [_err(origin, "text contains CR (CRLF line endings): Doccano's offsets shift; convert to LF")]
    if len(example.text) > nlp.max_length:
        return example, [_err(origin, f"text has {len(example.text):,} characters, over the limit of {nlp.max_length:,} "
                                      f"(spaCy's max_length; paragraphs are at most {MAX_PARAGRAPH_CHARS})")]
    spans = _dedupe_spans(example.spans, origin, out)
    spans = _map_offsets(replace(example, spans=spans), offsets, out)
    spans = _check_labels(spans, schema, origin, out)
    doc = nlp.make_doc(example.text)
    spans = [s for s in (_align(doc, s, tokens, origin, out) for s in spans) if s is not None]
    _check_overlaps(example.text, spans, schema, origin, out)
    relations = _check_relations(example, spans, schema, out)
    return replace(example, spans=spans, relations=relations), out


def check_duplicates(examples: Sequence[Example]) -> list[Problem]:
    """The same example twice from the same annotator is an error (an import ran twice)."""
    seen: dict[tuple[str | None, str], Origin] = {}
    out = []
    for ex in examples:
        key = (ex.annotator, ex.key())
        if key in seen:
            out.append(_err(ex.origin, f"duplicate example {ex.key()!r} (first seen at {seen[key]})"))
        else:
            seen[key] = ex.origin
    return out


def raise_on_errors(problems: Sequence[Problem]) -> None:
    if any(p.level == "error" for p in problems):
        raise ValidationFailed(problems)
