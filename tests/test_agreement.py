"""Agreement figures on hand-made disagreements, where the right answer is known."""

from homs_ner.data.records import Example, Relation, Span
from homs_ner.data.tokenizer import blank_arabic
from homs_ner.evaluate.agreement import compare, exact_prf, overlap_prf, pairwise, to_markdown

from doubles import load_schema

SCHEMA, NLP = load_schema(), blank_arabic()
TEXT = "خروج مقاتلي المعارضة من حي الوعر إلى إدلب"


def at(needle):
    s = TEXT.index(needle)
    return s, s + len(needle)


def example(annotator, spans, relations=()):
    return Example(TEXT, [Span(*at(t), lab, i) for i, (t, lab) in spans.items()], list(relations),
                   {"paragraph_id": "p:000"}, annotator)


def test_prf_helpers():
    assert exact_prf({1, 2}, {2, 3}).f1 == 0.5
    assert overlap_prf([(0, 5, "A")], [(3, 8, "A"), (9, 10, "A")]).as_dict()["precision"] == 0.5


def test_identical_annotations_agree_perfectly():
    spans = {"c": (TEXT, "CLAUSE:EVACUATION"), "a": ("مقاتلي المعارضة", "ACTOR"), "p": ("إدلب", "PLACE")}
    a = example("ann_a", spans, [Relation("c", "a", "agent"), Relation("c", "p", "destination")])
    b = example("ann_b", spans, [Relation("c", "a", "agent"), Relation("c", "p", "destination")])
    r = compare([a], [b], SCHEMA, NLP)
    assert r["entities"]["exact"]["micro"]["f1"] == 1.0 and r["entities"]["token_kappa"] == 1.0
    assert r["clauses"]["exact"]["f1"] == 1.0 and r["clauses"]["type_agreement"] == 1.0
    assert r["relations"]["micro"]["f1"] == 1.0


def test_boundary_type_and_relation_disagreements_are_measured():
    a = example("ann_a", {"c": (TEXT, "CLAUSE:EVACUATION"), "a": ("مقاتلي المعارضة", "ACTOR"), "p": ("حي الوعر", "PLACE")},
                [Relation("c", "a", "agent")])
    b = example("ann_b", {"c": ("خروج مقاتلي المعارضة من حي الوعر", "CLAUSE:SECURITY"), "a": ("المعارضة", "ACTOR"),
                          "p": ("حي الوعر", "PLACE")}, [Relation("c", "a", "affected")])
    r = pairwise([a, b], SCHEMA, NLP)["ann_a vs ann_b"]
    assert r["entities"]["exact"]["PLACE"]["f1"] == 1.0
    assert r["entities"]["exact"]["ACTOR"]["f1"] == 0.0 and r["entities"]["overlap"]["ACTOR"]["f1"] == 1.0
    assert r["clauses"]["exact"]["f1"] == 0.0 and r["clauses"]["overlap"]["f1"] == 1.0
    assert r["clauses"]["type_agreement"] == 0.0
    assert r["relations"]["micro"]["f1"] == 0.0
    assert 0 < r["entities"]["token_kappa"] < 1
    assert "## ann_a vs ann_b" in to_markdown({"ann_a vs ann_b": r})


def test_disagreements_list_what_only_one_side_marked() -> None:
    from homs_ner.data.records import Example, Relation, Span
    from homs_ner.evaluate.agreement import disagreements

    text = "خروج المقاتلين من حي الوعر"
    a = Example(text, [Span(0, 26, "CLAUSE:EVACUATION", "c"), Span(18, 26, "PLACE", "p")], [Relation("c", "p", "location")],
                {"paragraph_id": "x:000"}, "ann_a")
    b = Example(text, [Span(0, 26, "CLAUSE:EVACUATION", "c"), Span(5, 14, "ACTOR", "a")], [], {"paragraph_id": "x:000"}, "ann_b")
    same = Example("حمص", [], [], {"paragraph_id": "x:001"}, "ann_a")
    report = disagreements([a, b, same, Example("حمص", [], [], {"paragraph_id": "x:001"}, "ann_b")], "ann_a", "ann_b")
    assert "## x:000" in report and "x:001" not in report
    assert "- only ann_a: PLACE «حي الوعر» [18-26]" in report
    assert "- only ann_b: ACTOR «المقاتلين» [5-14]" in report
    assert "--location--> PLACE «حي الوعر»" in report
