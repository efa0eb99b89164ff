"""Agreements as structured data: what analysts read instead of spans.

For one annotated or predicted article doc, `extract` lists every clause with its type,
text, character offsets and, for each relation the schema allows from a clause (agent,
affected, guarantor, location, destination, amount), the entities it points to; plus an
inventory of the article's entities per label (actors, places, quantities, dates), each
entity with all its mentions. The relation and label names come from the schema, so the
output's keys follow `configs/labels.yml`.

Output schema (JSON, one object per article)::

    {"article_id": str, "text_chars": int,
     "clauses": [{"type": str, "text": str, "start": int, "end": int,
                  "<relation>": [{"label": str, "text": str, "start": int, "end": int}], ...}],
     "entities": {"<ENTITY LABEL>": [{"name": str, "mentions": [{"text", "start", "end"}]}]},
     "relations": [{"head": {...}, "label": str, "child": {...}}]}   # entity -> entity ones

`entities["DATE"]` are the article's dates. Mentions are grouped under one name by
orthographic normalisation (hamza forms, taa marbuta, alif maqsura, diacritics, tatweel)
and by dropping an attached proclitic when the bare form is itself a mention in the
article (بحمص joins حمص, but بابا عمرو stays itself).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence

from spacy.tokens import Doc

from homs_ner.data.conversion import doc_meta, relations_of
from homs_ner.data.schema import CLAUSE_KIND, Schema

_DIACRITICS = re.compile("[\u064b-\u0652\u0670\u0640]")
_FOLD = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ة": "ه", "ى": "ي"})
PROCLITICS = ("وب", "ول", "وال", "و", "ب", "ل", "ف", "ك")
CSV_FIXED = ["article_id", "clause", "type", "start", "end", "text"]


def normalise(text: str) -> str:
    """Orthographic key of a mention: the spelling variants Arabic news mixes fold together."""
    return " ".join(_DIACRITICS.sub("", text).translate(_FOLD).split())


def _mention(label: str, text: str, start: int, end: int) -> dict:
    return {"label": label, "text": text, "start": start, "end": end}


def clause_relations(schema: Schema) -> list[str]:
    """Relations whose head is a clause: the per-clause fields of the output."""
    return [r.name for r in schema.relations if any(head == CLAUSE_KIND for head, _ in r.pairs)]


def _group_mentions(mentions: Sequence[dict]) -> list[dict]:
    """Group mentions under one name: same normalised text, or a proclitic on a known bare form."""
    keys = {normalise(m["text"]) for m in mentions}

    def key_of(text: str) -> str:
        key = normalise(text)
        for clitic in PROCLITICS:
            bare = key[len(clitic):]
            if key.startswith(clitic) and len(bare) >= 3 and bare in keys:
                return bare
        return key

    groups: dict[str, list[dict]] = {}
    for m in mentions:
        groups.setdefault(key_of(m["text"]), []).append({k: m[k] for k in ("text", "start", "end")})
    return [{"name": _name(key, ms), "mentions": ms} for key, ms in groups.items()]


def _name(key: str, mentions: list[dict]) -> str:
    """The group's display name: a mention whose normalised form is the key itself, if any."""
    return next((m["text"] for m in mentions if normalise(m["text"]) == key), mentions[0]["text"])


def extract(doc: Doc, schema: Schema, article_id: str | None = None) -> dict:
    """The structured view of one article doc (see the module doc for the schema)."""
    group = schema.span_group
    fields = clause_relations(schema)
    by_head: dict[tuple, list[dict]] = {}
    other = []
    for rel in relations_of(doc):
        head, child = rel["head"], rel["child"]
        child_view = _mention(child["label"], doc.text[child["start"] : child["end"]], child["start"], child["end"])
        if head["label"].startswith(schema.doccano_prefix):
            by_head.setdefault((head["start"], head["end"], rel["label"]), []).append(child_view)
        else:
            head_view = _mention(head["label"], doc.text[head["start"] : head["end"]], head["start"], head["end"])
            other.append({"head": head_view, "label": rel["label"], "child": child_view})
    clauses = []
    for c in sorted(doc.spans.get(group, []), key=lambda s: (s.start_char, s.end_char)):
        row = {"type": c.label_, "text": c.text, "start": c.start_char, "end": c.end_char}
        for name in fields:
            row[name] = sorted(by_head.get((c.start_char, c.end_char, name), []), key=lambda m: m["start"])
        clauses.append(row)
    entities = {}
    for label in schema.entity_labels:
        mentions = [_mention(e.label_, e.text, e.start_char, e.end_char) for e in doc.ents if e.label_ == label]
        entities[label] = _group_mentions(mentions)
    meta = doc_meta(doc)
    return {
        "article_id": article_id or meta.get("article_id"),
        "text_chars": len(doc.text),
        "clauses": clauses,
        "entities": entities,
        "relations": other,
    }


def clauses_csv(extracts: Iterable[dict], schema: Schema) -> str:
    """One CSV row per clause; each clause relation is a column of `text [start-end]` joined by ` | `."""
    fields = clause_relations(schema)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIXED + fields)
    for ex in extracts:
        for i, c in enumerate(ex["clauses"]):
            links = [" | ".join(f"{m['text']} [{m['start']}-{m['end']}]" for m in c[name]) for name in fields]
            writer.writerow([ex["article_id"], i, c["type"], c["start"], c["end"], c["text"], *links])
    return out.getvalue()
