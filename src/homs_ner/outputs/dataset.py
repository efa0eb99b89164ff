"""The annotated corpus as a Hugging Face `datasets.DatasetDict` (train/dev/test by article).

One row per article: `tokens` (spaCy's tokens, the ones the annotation is aligned to),
`ner_tags` in IOB2 as a `ClassLabel` (names `O`, `B-ACTOR`, `I-ACTOR`, ... from the schema),
`clauses` (token start, exclusive token end, type as a `ClassLabel`, text) and `relations`
(head and child as token ranges with their span labels, and the relation as a
`ClassLabel`), plus `id`, `source` and `split`. Token offsets index `tokens`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value
from spacy.tokens import Doc

from homs_ner.data.conversion import doc_meta, relations_of
from homs_ner.data.schema import Schema
from homs_ner.evaluate.evaluation import iob2_tags


def iob2_names(schema: Schema) -> list[str]:
    """The `ner_tags` class names: O, then B-/I- per entity label in schema order."""
    return ["O"] + [f"{prefix}-{label}" for label in schema.entity_labels for prefix in ("B", "I")]


def features(schema: Schema) -> Features:
    endpoint = {"start": Value("int32"), "end": Value("int32"), "label": Value("string")}
    return Features(
        {
            "id": Value("string"),
            "source": Value("string"),
            "split": Value("string"),
            "tokens": List(Value("string")),
            "ner_tags": List(ClassLabel(names=iob2_names(schema))),
            "clauses": List(
                {"start": Value("int32"), "end": Value("int32"), "label": ClassLabel(names=schema.clause_labels), "text": Value("string")}
            ),
            "relations": List({"head": endpoint, "child": endpoint, "label": ClassLabel(names=schema.relation_labels)}),
        }
    )


def _token_range(doc: Doc, ref: Mapping) -> dict:
    span = doc.char_span(ref["start"], ref["end"])
    if span is None:
        raise ValueError(f"relation endpoint {ref} is not on token boundaries")
    return {"start": span.start, "end": span.end, "label": ref["label"]}


def doc_row(doc: Doc, schema: Schema) -> dict:
    """One dataset row from an article doc in the project's layout (see `conversion`)."""
    meta = doc_meta(doc)
    return {
        "id": str(meta.get("article_id") or ""),
        "source": str(meta.get("source") or ""),
        "split": str(meta.get("split") or ""),
        "tokens": [t.text for t in doc],
        "ner_tags": iob2_tags(doc),
        "clauses": [
            {"start": c.start, "end": c.end, "label": c.label_, "text": c.text} for c in doc.spans.get(schema.span_group, [])
        ],
        "relations": [
            {"head": _token_range(doc, r["head"]), "child": _token_range(doc, r["child"]), "label": r["label"]}
            for r in relations_of(doc)
        ],
    }


def build(splits: Mapping[str, Sequence[Doc]], schema: Schema) -> DatasetDict:
    """A DatasetDict with one Dataset per split; class labels are encoded from their names."""
    feats = features(schema)
    return DatasetDict(
        {name: Dataset.from_list([doc_row(d, schema) for d in docs], features=feats) for name, docs in splits.items()}
    )

