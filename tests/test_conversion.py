"""Validation and lossless conversion: Doccano <-> Example <-> Prodigy <-> spaCy DocBin."""

import json
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from spacy.tokens import DocBin

from homs_ner.data.annotations import check_inputs, convert, read_doccano
from homs_ner.data.conversion import (
    canonical, doc_to_example, example_to_doc, example_to_prodigy, merge_paragraphs, prodigy_to_example,
)
from homs_ner.data.corpus import Article
from homs_ner.data.records import Example, Origin, Relation, Span, from_doccano, python_to_utf16, to_doccano
from homs_ner.data.tokenizer import blank_arabic
from homs_ner.data.validation import TokenPolicy, ValidationFailed, check_example

from doubles import load_schema

SCHEMA = load_schema()
NLP = blank_arabic()
TEXT = "ونص الاتفاق على خروج مقاتلي المعارضة من حي الوعر باتجاه ريف حمص الشمالي خلال شهرين."


def find(text, needle):
    start = text.index(needle)
    return start, start + len(needle)


def gold_example(text=TEXT, meta=None):
    spans = [
        Span(*find(text, "خروج مقاتلي المعارضة من حي الوعر باتجاه ريف حمص الشمالي"), "CLAUSE:EVACUATION", "c1"),
        Span(*find(text, "مقاتلي المعارضة"), "ACTOR", "a1"),
        Span(*find(text, "حي الوعر"), "PLACE", "p1"),
        Span(*find(text, "ريف حمص الشمالي"), "PLACE", "p2"),
        Span(*find(text, "شهرين"), "QUANTITY", "q1"),
    ]
    relations = [Relation("c1", "a1", "agent"), Relation("c1", "p1", "location"), Relation("c1", "p2", "destination")]
    return Example(text, spans, relations, meta or {"paragraph_id": "x:000"}, "ann1", Origin("t.jsonl", 1, "7"))


def check(example, **kw):
    kw.setdefault("offsets", "python")
    return check_example(example, SCHEMA, NLP, **kw)


def reasons(problems, level="error"):
    return [p.reason for p in problems if p.level == level]


def test_valid_example_passes_and_round_trips_through_every_format():
    clean, problems = check(gold_example())
    assert problems == []
    doc = example_to_doc(NLP, clean, SCHEMA)
    assert [(e.text, e.label_) for e in doc.ents][0] == ("مقاتلي المعارضة", "ACTOR")
    assert [c.label_ for c in doc.spans["clauses"]] == ["EVACUATION"]
    docbin = DocBin(store_user_data=True)
    docbin.add(doc)
    restored = next(DocBin(store_user_data=True).from_bytes(docbin.to_bytes()).get_docs(NLP.vocab))
    back = doc_to_example(restored, SCHEMA)
    assert canonical(back) == canonical(clean)
    assert back.meta == clean.meta and back.annotator == "ann1"
    task = example_to_prodigy(NLP, clean)
    assert task["relations"][0]["head"] == task["relations"][0]["head_span"]["token_end"]
    assert canonical(prodigy_to_example(json.loads(json.dumps(task)), Origin())) == canonical(clean)
    record = to_doccano(back, flatten_meta=True)
    assert canonical(check(from_doccano(record, Origin()), offsets="utf16")[0]) == canonical(clean)


def test_punctuation_at_a_span_edge_is_left_outside_with_a_warning():
    text = "وقال إن الاتفاق وُقّع في 2012. ووصل «الثوار». ثم ، انتهى"
    example = Example(text, [Span(*find(text, "2012."), "DATE", "d"), Span(*find(text, "«الثوار»."), "ACTOR", "a"),
                             Span(*find(text, "،"), "PLACE", "p")], [], {"paragraph_id": "p"}, "ann")
    clean, problems = check(example)
    assert [text[s.start:s.end] for s in clean.spans] == ["2012", "الثوار"]
    assert reasons(problems) == ["span p PLACE «،» covers only punctuation"]
    assert len(reasons(problems, "warning")) == 2 and "punctuation at its edge left outside" in reasons(problems, "warning")[0]


def test_utf16_offsets_are_converted_for_text_outside_the_bmp():
    text = "😀 قوات النظام في حمص"
    units = python_to_utf16(text)
    s, e = find(text, "حمص")
    record = {"id": 1, "text": text, "entities": [{"id": 1, "label": "PLACE", "start_offset": units[s], "end_offset": units[e]}], "relations": []}
    clean, problems = check(from_doccano(record, Origin()), offsets="utf16")
    assert problems == [] and text[clean.spans[0].start:clean.spans[0].end] == "حمص"
    bad = {**record, "entities": [{"id": 1, "label": "PLACE", "start_offset": 1, "end_offset": 2}]}
    assert "surrogate pair" in reasons(check(from_doccano(bad, Origin()), offsets="utf16")[1])[0]


def test_partial_token_spans_are_expanded_with_a_warning_or_rejected():
    text = "قصف بحمص أمس"
    s, e = find(text, "حمص")
    example = Example(text, [Span(s, e, "PLACE", "1")], [], {}, None, Origin("f.jsonl", 3, "9"))
    clean, problems = check(example)
    assert text[clean.spans[0].start:clean.spans[0].end] == "بحمص"
    assert "expanded to «بحمص»" in reasons(problems, "warning")[0]
    _, problems = check(example, tokens=TokenPolicy.reject)
    assert "does not cover whole tokens" in reasons(problems)[0]
    assert str(problems[0]).startswith("error: f.jsonl:3 (example 9)")


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda ex: ex.spans.append(Span(5, 500, "ACTOR", "z")), "offsets out of range"),
        (lambda ex: ex.spans.append(Span(9, 4, "ACTOR", "z")), "start is not before end"),
        (lambda ex: ex.spans.append(Span(*find(TEXT, "الوعر"), "PERSON", "z")), "unknown label 'PERSON'"),
        (lambda ex: ex.spans.append(Span(*find(TEXT, "الوعر باتجاه"), "PLACE", "z")), "overlapping entities"),
        (lambda ex: ex.spans.append(Span(*find(TEXT, "الاتفاق على خروج"), "CLAUSE:CEASEFIRE", "z")), "a clause overlaps a clause"),
        (lambda ex: ex.spans.append(Span(*find(TEXT, "الشمالي خلال"), "QUANTITY", "z")), "overlapping entities"),
        (lambda ex: ex.relations.append(Relation("c1", "nope", "agent")), "refers to a missing span"),
        (lambda ex: ex.relations.append(Relation("a1", "c1", "agent")), "does not allow agent from ACTOR to CLAUSE"),
        (lambda ex: ex.relations.append(Relation("c1", "a1", "friend_of")), "unknown relation label"),
        (lambda ex: ex.relations.append(Relation("p1", "p1", "located_in")), "related to itself"),
    ],
)
def test_each_invalid_case_is_an_error_naming_the_example(mutate, expected):
    example = gold_example()
    mutate(example)
    _, problems = check(example)
    assert any(expected in r for r in reasons(problems)), problems
    assert all(p.origin.example == "7" for p in problems)


def test_entity_crossing_a_clause_boundary_is_an_error():
    text = "وطالبوا بخروج المقاتلين من حي الوعر"
    spans = [Span(*find(text, "بخروج المقاتلين من حي"), "CLAUSE:EVACUATION", "c"), Span(*find(text, "حي الوعر"), "PLACE", "p")]
    assert "crosses a clause boundary" in reasons(check(Example(text, spans))[1])[0]


@pytest.mark.parametrize("text, expected", [("   ", "empty text"), ("سطر\r\nسطر", "CRLF")])
def test_empty_and_crlf_texts_are_errors(text, expected):
    assert expected in reasons(check(Example(text))[1])[0]


def _write_export(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def test_duplicate_examples_and_bad_lines_are_reported_with_file_and_line(tmp_path):
    record = to_doccano(gold_example(), flatten_meta=True) | {"id": 7}
    path = tmp_path / "ann1.jsonl"
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n{broken\n" + json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    checked = check_inputs([path], SCHEMA, NLP)
    found = [(p.origin.line, p.reason) for p in checked.errors]
    assert any(line == 2 and "not valid JSON" in r for line, r in found)
    assert any(line == 3 and "duplicate example" in r for line, r in found)


def test_convert_rebuilds_articles_from_paragraphs_and_refuses_bad_input(tmp_path):
    first = "قالت مصادر إن وقف إطلاق النار في حي الوعر بدأ أمس."
    second = TEXT
    article_text = first + "\n\n" + second + "\n"
    article = Article("art1", "t", "o", "2015", "seed", "train", article_text)
    para2 = gold_example(second, {"paragraph_id": "art1:001", "article_id": "art1", "paragraph": 1,
                                  "start": len(first) + 2, "end": len(first) + 2 + len(second)})
    para1 = Example(first, [Span(*find(first, "حي الوعر"), "PLACE", "p"), Span(*find(first, "أمس"), "DATE", "d")], [],
                    {"paragraph_id": "art1:000", "article_id": "art1", "paragraph": 0, "start": 0, "end": len(first)})
    raw = tmp_path / "raw"
    raw.mkdir()
    _write_export(raw / "ann1.jsonl", [to_doccano(para1, True) | {"id": 1}, to_doccano(para2, True) | {"id": 2}])
    checked, counts = convert([raw], tmp_path / "out", SCHEMA, NLP, {"art1": article})
    assert counts == {"ann1.prodigy.jsonl": 2, "train.spacy": 1}
    doc = next(DocBin().from_disk(tmp_path / "out" / "train.spacy").get_docs(NLP.vocab))
    assert doc.text == article_text
    assert [e.text for e in doc.ents][:2] == ["حي الوعر", "أمس"]
    assert len(doc._.relations) == 3 and doc.user_data["meta"]["split"] == "train"
    assert [t["text"] for t in map(json.loads, (tmp_path / "out" / "ann1.prodigy.jsonl").read_text().splitlines())] == [first, second]

    _write_export(raw / "ann1.jsonl", [to_doccano(para1, True) | {"id": 1, "end": 3}])
    with pytest.raises(ValidationFailed, match="paragraph text does not match article art1"):
        convert([raw], tmp_path / "out2", SCHEMA, NLP, {"art1": article})
    assert not (tmp_path / "out2").exists()


def test_export_zip_members_are_annotators(tmp_path):
    zpath = tmp_path / "export.zip"
    with zipfile.ZipFile(zpath, "w") as archive:
        archive.writestr("alice.jsonl", json.dumps(to_doccano(gold_example(), True) | {"id": 1}, ensure_ascii=False) + "\n")
        archive.writestr("admin.jsonl", "\n")
    examples, problems = read_doccano(zpath)
    assert problems == [] and [e.annotator for e in examples] == ["alice"]


# --- property: any valid annotation survives Doccano -> spaCy -> Doccano ----------------------

WORDS = ["قوات", "النظام", "في", "حي", "الوعر", "خروج", "المقاتلين", "إلى", "إدلب", "😀", "500", "عنصر", "،", "أمس"]
PUNCT = {"،"}
ENTITY_LABELS = SCHEMA.entity_labels
CLAUSE_LABELS = [SCHEMA.doccano_clause_label(c) for c in SCHEMA.clause_labels]


@st.composite
def annotated(draw):
    words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=25))
    text = " ".join(words)
    starts, pos = [], 0
    for w in words:
        starts.append(pos)
        pos += len(w) + 1
    bounds = [(s, s + len(w)) for s, w in zip(starts, words)]
    spans, i, n = [], 0, len(words)
    # clauses: disjoint token ranges; entities: disjoint ranges nested in or outside clauses
    cuts = sorted(draw(st.sets(st.integers(0, n), max_size=6)))
    # Valid spans never start or end on punctuation (the guidelines leave it outside).
    for a, b in zip(cuts[::2], cuts[1::2]):
        if a < b and words[a] not in PUNCT and words[b - 1] not in PUNCT:
            spans.append(Span(bounds[a][0], bounds[b - 1][1], draw(st.sampled_from(CLAUSE_LABELS)), f"c{a}"))
    for j in range(n):
        if words[j] not in PUNCT and draw(st.booleans()) and draw(st.booleans()):
            spans.append(Span(bounds[j][0], bounds[j][1], draw(st.sampled_from(ENTITY_LABELS)), f"e{j}"))
    relations = []
    for head in spans:
        for child in spans:
            kind_h = "CLAUSE" if head.label.startswith("CLAUSE:") else head.label
            kind_c = "CLAUSE" if child.label.startswith("CLAUSE:") else child.label
            allowed = [r for r in SCHEMA.relation_labels if SCHEMA.relation_allowed(r, kind_h, kind_c)]
            if head is not child and allowed and draw(st.booleans()):
                relations.append(Relation(head.id, child.id, draw(st.sampled_from(allowed))))
    return Example(text, spans, relations, {"paragraph_id": "p"}, "ann")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(annotated())
def test_doccano_spacy_doccano_round_trip_loses_nothing(example):
    record = json.loads(json.dumps(to_doccano(example, flatten_meta=True), ensure_ascii=False))
    clean, problems = check(from_doccano(record, Origin(), "ann"), offsets="utf16")
    assert reasons(problems) == []
    assert canonical(clean) == canonical(example)
    docbin = DocBin(store_user_data=True)
    docbin.add(example_to_doc(NLP, clean, SCHEMA))
    doc = next(DocBin().from_bytes(docbin.to_bytes()).get_docs(NLP.vocab))
    back = doc_to_example(doc, SCHEMA)
    assert canonical(back) == canonical(example)
    again = to_doccano(back, flatten_meta=True)
    assert again["text"] == record["text"]
    assert sorted((e["start_offset"], e["end_offset"], e["label"]) for e in again["entities"]) == sorted(
        (e["start_offset"], e["end_offset"], e["label"]) for e in record["entities"]
    )


def _write(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_merge_single_pass_keeps_each_paragraphs_labelled_record(tmp_path):
    from homs_ner.data.annotations import merge_single_pass

    empty = {"entities": [], "relations": []}
    one = {"id": 1, "text": "حي الوعر", "paragraph_id": "a:000", **empty}
    two = {"id": 2, "text": "حمص", "paragraph_id": "a:001", **empty}
    labelled_one = {**one, "entities": [{"id": 5, "label": "PLACE", "start_offset": 0, "end_offset": 8}]}
    a = _write(tmp_path / "ann_a.jsonl", [labelled_one, two])
    b = _write(tmp_path / "ann_b.jsonl", [one, two])
    records, problems = merge_single_pass([b, a])
    assert problems == [] and records == [labelled_one, two]

    records, problems = merge_single_pass([a, a])
    assert [p.reason for p in problems] == [f"paragraph a:000 is labelled here and in {a}:1: adjudicate"]
    assert str(problems[0].origin) == f"{a}:1"
