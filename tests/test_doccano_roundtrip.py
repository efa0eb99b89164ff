"""End to end against a real Doccano: push schema and paragraphs, annotate as an annotator
would through the API, pull through the export, convert, and check the DocBin."""

import json

import pytest
from spacy.tokens import DocBin

from homs_ner.data.annotations import convert
from homs_ner.data.corpus import Article, paragraphs
from homs_ner.data.tokenizer import blank_arabic
from homs_ner.doccano.client import DoccanoClient
from homs_ner.doccano.sync import create_annotation, push, pull
from homs_ner.doccano.types import DoccanoError

from doubles import load_schema

pytestmark = pytest.mark.integration

SCHEMA = load_schema()
FIRST = "وتعهدت موسكو بنشر شرطة روسية في حي الوعر 😀 لحفظ الأمن."
SECOND = "ونص الاتفاق على خروج مقاتلي المعارضة من الحي باتجاه إدلب."
ARTICLE = Article("art_it", "عنوان", "outlet", "2017-03", "seed", "train", f"{FIRST}\n\n{SECOND}\n")


def at(text, needle):
    start = text.index(needle)
    return start, start + len(needle)


def test_push_annotate_pull_convert(doccano_server, doccano_admin, tmp_path):
    paras = paragraphs(ARTICLE)
    assert [p.text for p in paras] == [FIRST, SECOND]
    report = push(doccano_admin, "roundtrip", SCHEMA, "# Guidelines\nقواعد", paras)
    assert report.created_project and report.examples_created == 2
    again = push(doccano_admin, "roundtrip", SCHEMA, "# Guidelines\nقواعد", paras)
    assert (again.project_id, again.examples_created, again.examples_existing) == (report.project_id, 0, 2)
    assert again.label_types_created == again.label_types_updated == 0
    pid = report.project_id
    span_types = {t["text"]: t for t in doccano_admin.span_types(pid)}
    assert {l.name for l in SCHEMA.doccano_span_labels} == set(span_types)
    assert span_types["CLAUSE:EVACUATION"]["suffix_key"] == "2"
    assert {t["text"] for t in doccano_admin.relation_types(pid)} == set(SCHEMA.relation_labels)

    doccano_server.create_user("annotator1", "Waer-Truce-2015!")
    doccano_admin.add_member(pid, "annotator1", role="annotator")
    with DoccanoClient.login(doccano_server.url, "annotator1", "Waer-Truce-2015!") as annotator:
        span_ids = {t: v["id"] for t, v in span_types.items()}
        rel_ids = {t["text"]: t["id"] for t in annotator.relation_types(pid)}
        examples = {e["meta"]["paragraph_id"]: e for e in annotator.examples(pid)}
        ex1, ex2 = examples[paras[0].id], examples[paras[1].id]
        create_annotation(
            annotator, pid, ex1["id"], FIRST,
            [(*at(FIRST, "نشر شرطة روسية في حي الوعر 😀 لحفظ الأمن"), "CLAUSE:SECURITY"), (*at(FIRST, "موسكو"), "ACTOR"),
             (*at(FIRST, "شرطة روسية"), "ACTOR"), (*at(FIRST, "حي الوعر"), "PLACE")],
            [], span_ids, rel_ids,
        )
        # The clause follows an emoji, so its end offset differs between UTF-16 and Python.
        create_annotation(
            annotator, pid, ex2["id"], SECOND,
            [(*at(SECOND, "خروج مقاتلي المعارضة من الحي باتجاه إدلب"), "CLAUSE:EVACUATION"),
             (*at(SECOND, "مقاتلي المعارضة"), "ACTOR"), (*at(SECOND, "إدلب"), "PLACE")],
            [(0, 1, "agent"), (0, 2, "destination")], span_ids, rel_ids,
        )
        annotator.set_confirmed(pid, ex2["id"], True)

    written = pull(doccano_admin, "roundtrip", tmp_path / "raw")
    assert set(written) >= {"annotator1"}
    assert list((tmp_path / "raw" / "exports").glob("roundtrip-*.zip")), "the raw export zip is kept"
    records = [json.loads(l) for l in written["annotator1"].read_text(encoding="utf-8").splitlines() if l.strip()]
    assert sorted(r["paragraph_id"] for r in records) == [paras[0].id, paras[1].id]

    checked, counts = convert([written["annotator1"]], tmp_path / "out", SCHEMA, blank_arabic(), {ARTICLE.id: ARTICLE})
    assert checked.errors == [] and counts["train.spacy"] == 1
    # The annotator selected نشر inside بنشر: expanded to the whole token, with a warning.
    assert any("expanded to «بنشر" in w.reason for w in checked.warnings)
    doc = next(DocBin().from_disk(tmp_path / "out" / "train.spacy").get_docs(blank_arabic().vocab))
    assert doc.text == ARTICLE.text
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("موسكو", "ACTOR"), ("شرطة روسية", "ACTOR"), ("حي الوعر", "PLACE"), ("مقاتلي المعارضة", "ACTOR"), ("إدلب", "PLACE"),
    ]
    assert [(c.text, c.label_) for c in doc.spans["clauses"]] == [
        ("بنشر شرطة روسية في حي الوعر 😀 لحفظ الأمن", "SECURITY"),
        ("خروج مقاتلي المعارضة من الحي باتجاه إدلب", "EVACUATION"),
    ]
    rels = {(doc.text[r["head"]["start"]:r["head"]["end"]][:4], r["label"], doc.text[r["child"]["start"]:r["child"]["end"]])
            for r in doc._.relations}
    assert rels == {("خروج", "agent", "مقاتلي المعارضة"), ("خروج", "destination", "إدلب")}


def test_push_refuses_to_overwrite_a_changed_paragraph(doccano_admin):
    paras = paragraphs(ARTICLE)
    push(doccano_admin, "changed", SCHEMA, "", paras[:1])
    edited = Article(ARTICLE.id, "", "", "", "seed", "train", "نص آخر تماما\n\n" + SECOND)
    with pytest.raises(DoccanoError, match="changed text"):
        push(doccano_admin, "changed", SCHEMA, "", paragraphs(edited)[:1])


def test_pull_of_an_unknown_project_is_a_clear_error(doccano_admin, tmp_path):
    with pytest.raises(DoccanoError, match="no Doccano project named 'nope'"):
        pull(doccano_admin, "nope", tmp_path)
