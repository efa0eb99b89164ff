"""Text-anchored annotations: how the project's annotators write their work before entering it.

Counting character offsets in Arabic by hand is error-prone, so an annotator's working file
names each span by its text (and, when the text repeats, which occurrence, or the span it
sits in). This module resolves those anchors to offsets against the paragraph text; the
result enters Doccano through the REST API as the annotator's own spans and relations
(`homs-ner doccano annotate`), and is pulled back like any other annotation.

One JSON object a line:

    {"paragraph_id": "syn_001:003",
     "spans": [{"id": "c1", "label": "CLAUSE:EVACUATION", "text": "خروج المقاتلين ... إدلب"},
               {"id": "a1", "label": "ACTOR", "text": "المقاتلين", "in": "c1"},
               {"id": "p1", "label": "PLACE", "text": "حمص", "n": 2}],
     "relations": [["c1", "agent", "a1"]]}

`n` is the 1-based occurrence (default 1), counted inside the span named by `in` if given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from homs_ner.data.corpus import Paragraph
from homs_ner.data.io import read_jsonl
from homs_ner.data.records import Example, Origin, Relation, Span
from homs_ner.data.validation import Problem, check_example

if TYPE_CHECKING:
    from spacy.language import Language

    from homs_ner.data.schema import Schema


def _find(text: str, needle: str, lo: int, hi: int, n: int) -> int | None:
    """Start of the n-th occurrence of `needle` within text[lo:hi], or None."""
    pos = lo - 1
    for _ in range(n):
        pos = text.find(needle, pos + 1, hi)
        if pos < 0:
            return None
    return pos


def resolve(record: dict, paragraph: Paragraph, origin: Origin) -> tuple[Example, list[Problem]]:
    """Turn one anchored record into an Example with Python offsets, or report why not."""
    problems: list[Problem] = []
    text = paragraph.text
    placed: dict[str, Span] = {}
    for raw in record.get("spans") or []:
        sid, label, needle = str(raw.get("id")), str(raw.get("label")), str(raw.get("text") or "")
        lo, hi = 0, len(text)
        parent = raw.get("in")
        if parent is not None:
            if str(parent) not in placed:
                problems.append(Problem("error", origin, f"span {sid}: `in` names {parent!r}, not an earlier span"))
                continue
            lo, hi = placed[str(parent)].start, placed[str(parent)].end
        n = int(raw.get("n", 1))
        start = _find(text, needle, lo, hi, n) if needle else None
        if start is None:
            scope = f" inside {parent}" if parent else ""
            problems.append(Problem("error", origin, f"span {sid} {label}: occurrence {n} of «{needle}» not found{scope}"))
            continue
        if sid in placed:
            problems.append(Problem("error", origin, f"span id {sid} used twice"))
            continue
        span = Span(start, start + len(needle), label, sid)
        twin = next((s for s in placed.values() if (s.start, s.end, s.label) == (span.start, span.end, span.label)), None)
        if twin:
            problems.append(Problem("error", origin, f"spans {twin.id} and {sid} are the same «{needle}»; use `n`"))
            continue
        placed[sid] = span
    relations = []
    for raw in record.get("relations") or []:
        if not (isinstance(raw, Sequence) and len(raw) == 3):
            problems.append(Problem("error", origin, f"relation {raw!r} is not [head, label, child]"))
            continue
        head, label, child = map(str, raw)
        relations.append(Relation(head, child, label))
    example = Example(text, list(placed.values()), relations, paragraph.meta, None, origin)
    return example, problems


def read_anchored(path: Path, paragraphs: Mapping[str, Paragraph]) -> tuple[list[Example], list[Problem]]:
    """Resolve every record of an anchored file against the corpus paragraphs."""
    examples, problems = [], []
    for lineno, record in read_jsonl(path):
        pid = str(record.get("paragraph_id"))
        origin = Origin(str(path), lineno, pid)
        if pid not in paragraphs:
            problems.append(Problem("error", origin, f"unknown paragraph_id {pid!r}"))
            continue
        example, found = resolve(record, paragraphs[pid], origin)
        examples.append(example)
        problems += found
    return examples, problems


def read_checked(
    paths: Iterable[Path], paragraphs: Mapping[str, Paragraph], schema: Schema, nlp: Language
) -> tuple[list[Example], list[Problem]]:
    """Every record of the anchored files, resolved and checked against the schema and the
    tokenizer (Python offsets, as they are entered into Doccano), with all problems found."""
    examples, problems = [], []
    for path in paths:
        found, found_problems = read_anchored(path, paragraphs)
        examples += found
        problems += found_problems
    for example in examples:
        problems += check_example(example, schema, nlp, offsets="python")[1]
    return examples, problems
