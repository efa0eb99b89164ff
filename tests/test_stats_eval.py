"""Corpus statistics and the entity part of the evaluation, on hand-made data."""

from homs_ner.data.corpus import Article
from homs_ner.data.records import Example, Relation, Span
from homs_ner.data.stats import corpus_stats, to_markdown
from homs_ner.data.tokenizer import blank_arabic
from homs_ner.evaluate.evaluation import iob2_tags, seqeval_entities

from doubles import load_schema

SCHEMA, NLP = load_schema(), blank_arabic()


def test_stats_count_per_group():
    arts = [Article("s1", "", "", "", "seed", "test", "قوات النظام في حمص"), Article("y1", "", "", "", "synthetic", "train", "نص قصير")]
    ex = Example("قوات النظام في حمص", [Span(0, 11, "ACTOR", "a"), Span(15, 18, "PLACE", "p"), Span(0, 18, "CLAUSE:SECURITY", "c")],
                 [Relation("c", "p", "location")], {"article_id": "s1"})
    stats = corpus_stats(arts, [ex], SCHEMA)
    assert stats["all"]["articles"] == 2 and stats["all"]["words"] == 6
    assert stats["seed/test"]["entity:ACTOR"] == 1 and stats["seed/test"]["clause:SECURITY"] == 1
    assert stats["split=train"].get("entity:ACTOR", 0) == 0 and stats["source=seed"]["relation:location"] == 1
    assert "| relation:location | 1 |" in to_markdown(stats, SCHEMA)


def test_seqeval_is_strict_iob2():
    gold = NLP("قوات النظام في حي الوعر")
    gold.ents = [gold.char_span(0, 11, "ACTOR"), gold.char_span(15, 23, "PLACE")]
    pred = NLP("قوات النظام في حي الوعر")
    pred.ents = [pred.char_span(5, 11, "ACTOR"), pred.char_span(15, 23, "PLACE")]
    assert iob2_tags(gold) == ["B-ACTOR", "I-ACTOR", "O", "B-PLACE", "I-PLACE"]
    scores = seqeval_entities([gold], [pred])
    assert scores["PLACE"]["f1"] == 1.0 and scores["ACTOR"]["f1"] == 0.0
    assert scores["micro avg"]["precision"] == 0.5


def test_experiment_summary_reports_mean_and_spread():
    from homs_ner.evaluate.experiments import summarize, to_markdown

    def run(f1, type_matched=1):
        prf = {"f1": f1}
        clauses = {"overlap": prf, "type_agreement": f1 if type_matched else 0.0, "type_matched": type_matched}
        return {"entities_seqeval": {"micro avg": prf}, "clauses": clauses,
                "relations_gold_spans": {"micro": prf}, "relations_end_to_end": {"micro": prf}}

    summary = summarize({"a": run(0.5), "b": run(0.7), "c": run(0.6, type_matched=0)})
    assert abs(summary["entities micro F1"]["mean"] - 0.6) < 1e-9
    assert abs(summary["relations F1 (end to end)"]["stdev"] - 0.1) < 1e-9
    # No matched clause: type accuracy is undefined, left out of the mean rather than a 0.
    assert summary["clause type accuracy"]["runs"]["c"] is None and summary["clause type accuracy"]["n"] == 2
    markdown = to_markdown("t", {"runs": {"a": 0, "b": 0, "c": 0}, "summary": summary}, "n")
    assert "| entities micro F1 | 50.0 | 70.0 | 60.0 | **60.0** | 10.0 |" in markdown
    assert "| clause type accuracy | 50.0 | 70.0 | n/a | **60.0** (2 of 3) | 14.1 |" in markdown
