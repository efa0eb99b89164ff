"""The Python API for code that uses a trained homs-ner pipeline.

    import homs_ner
    nlp = homs_ner.load("training/transformer/model-best")   # or an installed package name
    result = homs_ner.analyze(nlp, text)
    result["clauses"][0] -> {"type": "EVACUATION", "text": ..., "start": ..., "end": ...}

`load` is plain `spacy.load`: the components are registered through entry points, so a
pipeline directory or installed package needs no other import.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypedDict

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from homs_ner.data.conversion import relations_of
from homs_ner.outputs.inference import pipe_articles



class Entity(TypedDict):
    label: str
    text: str
    start: int
    end: int


class Clause(TypedDict):
    type: str
    text: str
    start: int
    end: int


class RelationOut(TypedDict):
    head: dict
    label: str
    child: dict


class Analysis(TypedDict):
    text: str
    entities: list[Entity]
    clauses: list[Clause]
    relations: list[RelationOut]


def load(name_or_path: str | Path) -> Language:
    """Load a trained pipeline (directory or installed package) with plain `spacy.load`."""
    return spacy.load(name_or_path)


def _span(doc: Doc, ref: dict) -> dict:
    return {"label": ref["label"], "text": doc.text[ref["start"] : ref["end"]], "start": ref["start"], "end": ref["end"]}


def clause_group(nlp: Language) -> str:
    """The span group the pipeline writes clauses to: the span categorizer's own key."""
    keys = [pipe.key for _, pipe in nlp.pipeline if hasattr(pipe, "key") and hasattr(pipe, "suggester")]
    if len(keys) != 1:
        raise ValueError(f"expected one span categorizer in the pipeline {nlp.pipe_names}, found {len(keys)}")
    return keys[0]


def doc_to_analysis(doc: Doc, span_group: str) -> Analysis:
    """Entities, clauses (type, text, offsets) and relations (head, label, child) of a processed doc."""
    return {
        "text": doc.text,
        "entities": [{"label": e.label_, "text": e.text, "start": e.start_char, "end": e.end_char} for e in doc.ents],
        "clauses": [
            {"type": c.label_, "text": c.text, "start": c.start_char, "end": c.end_char}
            for c in doc.spans.get(span_group, [])
        ],
        "relations": [
            {"head": _span(doc, r["head"]), "label": r["label"], "child": _span(doc, r["child"])} for r in relations_of(doc)
        ],
    }


def analyze(nlp: Language, text: str) -> Analysis:
    """One article of any length (empty too): see `analyze_many`."""
    return next(analyze_many(nlp, [text], batch_size=1))


def analyze_many(nlp: Language, texts: Iterable[str], batch_size: int = 8) -> Iterator[Analysis]:
    """One analysis per text, in order; long articles run in windows, empty ones give empty results."""
    group = clause_group(nlp)
    for doc in pipe_articles(nlp, texts, batch_size):
        yield doc_to_analysis(doc, group)
