"""A tiny hand-made corpus in the project's Doc layout, and short training runs on it.

Three two-paragraph Arabic docs with entities, clauses and relations stand in for the corpus
in unit tests of the components, the training configs and the outputs built on a model.
"""

from __future__ import annotations

from pathlib import Path

from spacy.cli.train import train
from spacy.language import Language
from spacy.tokens import Doc

from homs_ner.cli.defaults import SCHEMA_PATH as DEFAULT_SCHEMA_PATH

from doubles import load_schema

CONFIGS = DEFAULT_SCHEMA_PATH.parent
SCHEMA = load_schema()
CLAUSE = SCHEMA.doccano_clause_label

# (text, entities, clauses, relations); spans are (surface, label), each surface unique in its text.
DATA = [
    (
        "أعلن الجيش السوري وقف إطلاق النار في حي الوعر.\nوينص الاتفاق على خروج المسلحين إلى ريف حمص الشمالي.",
        [("الجيش السوري", "ACTOR"), ("حي الوعر", "PLACE"), ("المسلحين", "ACTOR"), ("ريف حمص الشمالي", "PLACE")],
        [("وقف إطلاق النار في حي الوعر", "CEASEFIRE"), ("خروج المسلحين إلى ريف حمص الشمالي", "EVACUATION")],
        [
            ("وقف إطلاق النار في حي الوعر", "agent", "الجيش السوري"),
            ("وقف إطلاق النار في حي الوعر", "location", "حي الوعر"),
            ("خروج المسلحين إلى ريف حمص الشمالي", "affected", "المسلحين"),
            ("خروج المسلحين إلى ريف حمص الشمالي", "destination", "ريف حمص الشمالي"),
        ],
    ),
    (
        "توصلت لجنة المصالحة إلى اتفاق مع الفصائل المسلحة في حي الوعر في مدينة حمص.\n\n"
        "وينص الاتفاق على تسليم السلاح الثقيل خلال عشرة أيام برعاية الأمم المتحدة.",
        [
            ("لجنة المصالحة", "ACTOR"), ("الفصائل المسلحة", "ACTOR"), ("حي الوعر", "PLACE"),
            ("مدينة حمص", "PLACE"), ("عشرة أيام", "QUANTITY"), ("الأمم المتحدة", "ACTOR"),
        ],
        [("تسليم السلاح الثقيل خلال عشرة أيام", "WEAPONS")],
        [
            ("حي الوعر", "located_in", "مدينة حمص"),
            ("تسليم السلاح الثقيل خلال عشرة أيام", "amount", "عشرة أيام"),
            ("تسليم السلاح الثقيل خلال عشرة أيام", "guarantor", "الأمم المتحدة"),
        ],
    ),
    (
        "أفرجت الحكومة السورية عن ٢٠٠ معتقل من أبناء حي الوعر يوم الاثنين.\n"
        "وأكد المحافظ طلال البرازي أن الاتفاق يشمل عودة الأهالي إلى بيوتهم.",
        [
            ("الحكومة السورية", "ACTOR"), ("٢٠٠ معتقل", "QUANTITY"), ("حي الوعر", "PLACE"),
            ("يوم الاثنين", "DATE"), ("طلال البرازي", "ACTOR"), ("الأهالي", "ACTOR"),
        ],
        [("أفرجت الحكومة السورية عن ٢٠٠ معتقل من أبناء حي الوعر", "DETAINEES"), ("عودة الأهالي إلى بيوتهم", "RETURN")],
        [
            ("أفرجت الحكومة السورية عن ٢٠٠ معتقل من أبناء حي الوعر", "agent", "الحكومة السورية"),
            ("أفرجت الحكومة السورية عن ٢٠٠ معتقل من أبناء حي الوعر", "amount", "٢٠٠ معتقل"),
            ("عودة الأهالي إلى بيوتهم", "affected", "الأهالي"),
        ],
    ),
]


def make_doc(nlp: Language, text: str, entities: list, clauses: list, relations: list | None) -> Doc:
    """A doc in the project layout (see homs_ner.conversion) from surface strings."""
    doc = nlp.make_doc(text)

    def span(surface: str, label: str):
        start = text.index(surface)
        result = doc.char_span(start, start + len(surface), label=label)
        assert result is not None, surface
        return result

    doc.ents = [span(s, label) for s, label in entities]
    doc.spans[SCHEMA.span_group] = [span(s, label) for s, label in clauses]
    labels = {s: label for s, label in entities} | {s: CLAUSE(label) for s, label in clauses}

    def ref(surface: str) -> dict:
        start = text.index(surface)
        return {"start": start, "end": start + len(surface), "label": labels[surface]}

    doc._.relations = None if relations is None else [
        {"head": ref(h), "child": ref(c), "label": label} for h, label, c in relations
    ]
    return doc


def train_config(name: str, output: Path, corpus: Path, **overrides: object) -> Path:
    """Train configs/<name> for a few steps on the tiny corpus; return model-last."""
    train(
        CONFIGS / name,
        output,
        overrides={
            "paths.train": str(corpus),
            "paths.dev": str(corpus),
            "paths.schema": str(DEFAULT_SCHEMA_PATH),
            "training.eval_frequency": 2,
            **overrides,
        },
    )
    return output / "model-last"
