"""Evaluation on held-out articles: seqeval for entities, span F1 for clauses, relation F1.

- Entities: spaCy's BILUO tags converted to IOB2 and scored by seqeval in strict mode
  (a span counts only with the exact boundaries and label), per label and micro.
- Clauses: exact-span and overlapping-span F1, and type accuracy on overlapping clauses.
- Relations: per type and micro, twice: with gold entities and clauses given to the relation
  component (its own quality), and end to end on the pipeline's own predictions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from seqeval.metrics import classification_report
from seqeval.scheme import IOB2
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import biluo_to_iob, offsets_to_biluo_tags

from .agreement import compare
from .conversion import doc_to_example
from .schema import Schema

# Pipes that predict spans: skipped when relations are scored on gold spans.
SPAN_PIPES = {"ner", "span_finder", "spancat", "spancat_singlelabel"}


def iob2_tags(doc: Doc) -> list[str]:
    """IOB2 tags of the doc's entities (via spaCy's BILUO tags)."""
    offsets = [(e.start_char, e.end_char, e.label_) for e in doc.ents]
    return biluo_to_iob(offsets_to_biluo_tags(doc, offsets))


def seqeval_entities(gold: Sequence[Doc], pred: Sequence[Doc]) -> dict:
    """Strict IOB2 seqeval: per label and micro precision, recall, F1 and support."""
    y_true = [iob2_tags(d) for d in gold]
    y_pred = [iob2_tags(d) for d in pred]
    report = classification_report(y_true, y_pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    return {
        label: {"precision": float(v["precision"]), "recall": float(v["recall"]), "f1": float(v["f1-score"]), "support": int(v["support"])}
        for label, v in report.items()
        if label not in ("macro avg", "weighted avg")
    }


def with_gold_spans(nlp: Language, gold: Doc, schema: Schema) -> Doc:
    """Run the pipeline's non-span components on a doc that carries the gold entities and clauses."""
    doc = nlp.make_doc(gold.text)
    doc.ents = [doc.char_span(e.start_char, e.end_char, label=e.label_) for e in gold.ents]
    doc.spans[schema.span_group] = [
        doc.char_span(c.start_char, c.end_char, label=c.label_) for c in gold.spans.get(schema.span_group, [])
    ]
    for name, pipe in nlp.pipeline:
        if name not in SPAN_PIPES:
            doc = pipe(doc)
    return doc


def _examples(docs: Iterable[Doc], gold: Sequence[Doc], schema: Schema) -> list:
    """Examples keyed like their gold doc, so `compare` pairs them."""
    out = []
    for doc, ref in zip(docs, gold):
        ex = doc_to_example(doc, schema)
        ex.meta = {"paragraph_id": ref.user_data.get("meta", {}).get("article_id") or ref.text}
        out.append(ex)
    return out


def evaluate(nlp: Language, gold: Sequence[Doc], schema: Schema, batch_size: int = 4) -> dict:
    """All figures of the evaluation report for one pipeline on one set of gold docs."""
    pred = list(nlp.pipe((d.text for d in gold), batch_size=batch_size))
    gold_spans = [with_gold_spans(nlp, d, schema) for d in gold]
    gold_ex = _examples(gold, gold, schema)
    end_to_end = compare(gold_ex, _examples(pred, gold, schema), schema, nlp)
    on_gold = compare(gold_ex, _examples(gold_spans, gold, schema), schema, nlp)
    return {
        "docs": len(gold),
        "words": sum(len([t for t in d if not t.is_space]) for d in gold),
        "entities_seqeval": seqeval_entities(gold, pred),
        "entities_overlap": end_to_end["entities"]["overlap"],
        "clauses": end_to_end["clauses"],
        "relations_gold_spans": on_gold["relations"],
        "relations_end_to_end": end_to_end["relations"],
    }
