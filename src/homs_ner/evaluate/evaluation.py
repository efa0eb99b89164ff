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
from spacy.tokens import Doc, Span as SpacySpan
from spacy.training import biluo_to_iob, offsets_to_biluo_tags

from homs_ner.data.conversion import doc_to_example
from homs_ner.data.schema import Schema
from homs_ner.evaluate.agreement import compare
from homs_ner.evaluate.generalisation import seen_unseen_recall
from homs_ner.report import pct, row

# Pipes that predict spans: skipped when relations are scored on gold spans.
SPAN_PIPES = {"ner", "span_finder", "spancat", "spancat_singlelabel", "clause_tagger", "clause_classifier"}


def _whole_tokens(doc: Doc, gold: SpacySpan) -> SpacySpan:
    """The gold span on `doc`'s tokens, expanded to whole tokens where the pipeline's tokenizer cuts it.

    Gold DocBins keep the tokens of the tokenizer they were converted with; a model trained
    with newer splitting rules may cut a gold span inside a token, where a plain `char_span`
    gives None and the span would be dropped (or crash `doc.ents`). Expanding is what
    validation does with such spans.
    """
    return doc.char_span(gold.start_char, gold.end_char, label=gold.label_, alignment_mode="expand")


def iob2_tags(doc: Doc, ents: Sequence[SpacySpan] | None = None) -> list[str]:
    """IOB2 tags of the doc's entities, or of `ents` on its tokens (via spaCy's BILUO tags)."""
    offsets = [(e.start_char, e.end_char, e.label_) for e in (doc.ents if ents is None else ents)]
    return biluo_to_iob(offsets_to_biluo_tags(doc, offsets))


def seqeval_entities(gold: Sequence[Doc], pred: Sequence[Doc]) -> dict:
    """Strict IOB2 seqeval: per label and micro precision, recall, F1 and support.

    Gold entities are tagged on the predicted doc's tokens (expanded where those cut them),
    so both tag sequences have one tag per token even when the tokenizers differ.
    """
    y_true = [iob2_tags(p, [_whole_tokens(p, e) for e in g.ents]) for g, p in zip(gold, pred)]
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
    doc.ents = [_whole_tokens(doc, e) for e in gold.ents]
    doc.spans[schema.span_group] = [_whole_tokens(doc, c) for c in gold.spans.get(schema.span_group, [])]
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


def evaluate(
    nlp: Language, gold: Sequence[Doc], schema: Schema, seen: set[str] | None = None, batch_size: int = 4
) -> dict:
    """All figures of the evaluation report for one pipeline on one set of gold docs.

    `seen`: the normalised entity texts of the training docs
    (`generalisation.entity_vocabulary`); with it, entity recall is also split into
    mentions seen and unseen in training."""
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
        **({"entities_unseen_seen": seen_unseen_recall(gold, pred, seen)} if seen is not None else {}),
    }


def to_markdown(results: dict[str, dict], title: str = "Evaluation on the held-out test split") -> str:
    """Side-by-side tables, one column group per pipeline (e.g. transformer and tok2vec baseline)."""
    names = list(results)
    first = results[names[0]]
    lines = [f"# {title}", "", f"{first['docs']} articles, {first['words']} words. Generated by `homs-ner evaluate`.", ""]
    lines += ["## Entities (seqeval, strict IOB2; overlap: a predicted entity of the same label shares a character)", "",
              row(["label", *[f"{n} P / R / F1" for n in names], *[f"{n} overlap F1" for n in names], "support"]),
              row(["---"] * (2 * len(names) + 2))]
    for label in first["entities_seqeval"]:
        cells = []
        for n in names:
            m = results[n]["entities_seqeval"].get(label, {"precision": 0, "recall": 0, "f1": 0})
            cells.append(f"{pct(m['precision'])} / {pct(m['recall'])} / **{pct(m['f1'])}**")
        overlap_key = "micro" if label == "micro avg" else label
        overlap = [pct(results[n]["entities_overlap"].get(overlap_key, {"f1": 0})["f1"]) for n in names]
        lines.append(row([label, *cells, *overlap, first["entities_seqeval"][label]["support"]]))
    lines += _unseen_table(results)
    lines += ["", "## Clauses", "", row(["measure", *names]), row(["---"] * (len(names) + 1))]
    lines.append(row(["exact-span F1", *[pct(results[n]["clauses"]["exact"]["f1"]) for n in names]]))
    lines.append(row(["overlap F1", *[pct(results[n]["clauses"]["overlap"]["f1"]) for n in names]]))
    lines.append(row(["typed exact-span F1", *[pct(results[n]["clauses"]["typed_exact"]["f1"]) for n in names]]))
    lines.append(row(["typed overlap F1", *[pct(results[n]["clauses"]["typed_overlap"]["f1"]) for n in names]]))
    lines.append(row(["predicted / gold clauses", *[
        f"{results[n]['clauses']['exact']['n_b']} / {results[n]['clauses']['exact']['n_a']}" for n in names]]))
    lines.append(row(["type accuracy on overlapping clauses", *[
        f"{pct(results[n]['clauses']['type_agreement'])} (n={results[n]['clauses']['type_matched']})" for n in names]]))
    for key, heading in (("relations_gold_spans", "Relations with gold entities and clauses"),
                         ("relations_end_to_end", "Relations end to end (predicted entities and clauses)")):
        lines += ["", f"## {heading}", "", row(["label", *[f"{n} P / R / F1" for n in names], "gold"]),
                  row(["---"] * (len(names) + 2))]
        for label, m0 in first[key].items():
            cells = [f"{pct(results[n][key][label]['precision'])} / {pct(results[n][key][label]['recall'])} / "
                     f"**{pct(results[n][key][label]['f1'])}**" for n in names]
            lines.append(row([label, *cells, m0["n_a"]]))
    return "\n".join(lines) + "\n"


def _unseen_table(results: dict[str, dict]) -> list[str]:
    """Recall on gold mentions unseen and seen in training, when the results have it."""
    names = list(results)
    if not all("entities_unseen_seen" in results[n] for n in names):
        return []
    lines = ["", "## Entity recall on mentions unseen and seen in training", "",
             "A gold mention is unseen when its normalised text (hamza, taa marbuta, alef maqsura, tatweel, "
             "diacritics; proclitics and the article stripped) is no entity of the training split. Strict recall.", "",
             row(["label", *[f"{n} unseen" for n in names], *[f"{n} seen" for n in names], "n unseen / seen"]),
             row(["---"] * (2 * len(names) + 2))]
    for label, m0 in results[names[0]]["entities_unseen_seen"].items():
        unseen = [pct(results[n]["entities_unseen_seen"][label]["unseen"]["recall"]) for n in names]
        seen = [pct(results[n]["entities_unseen_seen"][label]["seen"]["recall"]) for n in names]
        lines.append(row([label, *unseen, *seen, f"{m0['unseen']['n']} / {m0['seen']['n']}"]))
    return lines
