"""What analysts use: structured extraction, the Hugging Face dataset export, the HTML view.

Extraction is checked on a real seed article annotated here by hand (its first paragraph),
the CLI paths with a real trained pipeline, and the HTML page in a real headless Chromium.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from datasets import load_from_disk
from spacy.tokens import DocBin
from typer.testing import CliRunner

from homs_ner.cli import app
from homs_ner.cli.defaults import CORPUS_DIR
from homs_ner.data.tokenizer import blank_arabic
from homs_ner.outputs.dataset import build, iob2_names
from homs_ner.outputs.extraction import clause_relations, extract, normalise
from homs_ner.outputs.visualize import chromium, render_article, screenshot
from doubles import load_articles
from tiny_corpus import DATA, SCHEMA, make_doc

SEED = "000_15c30e188eba9c5a"
CEASEFIRE = "وقف شامل لإطلاق النار على جميع الجبهات في حي الوعر الحمصي"
SEED_ENTITIES = [
    ("أمس الأربعاء", "DATE"), ("حي الوعر الحمصي", "PLACE"), ("قوات النظام", "ACTOR"), ("أكثر من عام", "QUANTITY"),
    ("والثوار", "ACTOR"), ("مدينة حمص", "PLACE"), ("الحي", "PLACE"), ("عشرة أيام", "QUANTITY"),
    ("اللجان التفاوضية", "ACTOR"),
]
runner = CliRunner()


def seed_doc():
    """The seed's first paragraph as a doc, annotated by the guidelines (a hand-made fixture)."""
    text = next(a for a in load_articles() if a.id == SEED).text.strip().split("\n")[0]
    doc = make_doc(
        blank_arabic(), text, SEED_ENTITIES, [(CEASEFIRE, "CEASEFIRE")],
        [(CEASEFIRE, "location", "حي الوعر الحمصي"), (CEASEFIRE, "agent", "قوات النظام"), (CEASEFIRE, "agent", "والثوار"),
         ("حي الوعر الحمصي", "located_in", "مدينة حمص")],
    )
    doc.user_data["meta"] = {"article_id": SEED, "source": "seed", "split": "train"}
    return doc


def test_extract_lists_each_clause_with_its_parties_places_and_the_inventory() -> None:
    result = extract(seed_doc(), SCHEMA)
    assert result["article_id"] == SEED
    (clause,) = result["clauses"]
    assert (clause["type"], clause["text"]) == ("CEASEFIRE", CEASEFIRE)
    assert [m["text"] for m in clause["agent"]] == ["قوات النظام", "والثوار"]
    assert [m["text"] for m in clause["location"]] == ["حي الوعر الحمصي"]
    assert set(clause) >= set(clause_relations(SCHEMA)) == {"agent", "affected", "guarantor", "location", "destination", "amount"}
    assert [d["name"] for d in result["entities"]["DATE"]] == ["أمس الأربعاء"]
    assert [r["label"] for r in result["relations"]] == ["located_in"]
    actors = {a["name"]: len(a["mentions"]) for a in result["entities"]["ACTOR"]}
    assert actors["قوات النظام"] == 1 and "والثوار" in actors  # no bare الثوار mention to join


def test_inventory_joins_spelling_variants_and_proclitics_on_a_known_name() -> None:
    text = "دخلت القوات إلى حمص، وفي حِمص اجتمع الأهالي، ثم عادوا بحمص. وبابا عمرو حي آخر."
    doc = make_doc(blank_arabic(), text, [("حمص", "PLACE"), ("حِمص", "PLACE"), ("بحمص", "PLACE"), ("وبابا عمرو", "PLACE")], [], [])
    places = extract(doc, SCHEMA)["entities"]["PLACE"]
    assert [(p["name"], len(p["mentions"])) for p in places] == [("حمص", 3), ("وبابا عمرو", 1)]
    assert normalise("إدلب") == normalise("ادلب") and normalise("الحماية") == normalise("الحمايه")


def test_extract_cli_writes_json_and_csv_from_annotated_docs_and_from_a_model(tmp_path: Path, tiny_model: Path) -> None:
    DocBin(docs=[seed_doc()], store_user_data=True).to_disk(tmp_path / "gold.spacy")
    done = runner.invoke(app, ["extract", str(tmp_path / "gold.spacy"), "--out", str(tmp_path / "gold")])
    assert done.exit_code == 0, done.output
    assert json.loads((tmp_path / "gold" / f"{SEED}.json").read_text(encoding="utf-8"))["clauses"][0]["type"] == "CEASEFIRE"
    rows = list(csv.DictReader(io.StringIO((tmp_path / "gold" / "clauses.csv").read_text(encoding="utf-8"))))
    assert rows[0]["agent"].startswith("قوات النظام [") and rows[0]["article_id"] == SEED

    article = CORPUS_DIR / "articles" / f"{SEED}.txt"
    done = runner.invoke(app, ["extract", str(article), "--model", str(tiny_model), "--out", str(tmp_path / "pred")])
    assert done.exit_code == 0, done.output
    predicted = json.loads((tmp_path / "pred" / f"{SEED}.json").read_text(encoding="utf-8"))
    assert set(predicted["entities"]) == set(SCHEMA.entity_labels) and isinstance(predicted["clauses"], list)


def test_extract_without_model_or_docs_says_what_to_give(tmp_path: Path) -> None:
    article = CORPUS_DIR / "articles" / f"{SEED}.txt"
    done = runner.invoke(app, ["extract", str(article), "--out", str(tmp_path)])
    assert done.exit_code == 1 and "--model" in done.output


def test_dataset_export_reads_back_with_iob2_class_labels(tmp_path: Path) -> None:
    nlp = blank_arabic()
    docs = [make_doc(nlp, *row) for row in DATA]
    for i, doc in enumerate(docs):
        doc.user_data["meta"] = {"article_id": f"a{i}", "source": "synthetic", "split": "train"}
    out = tmp_path / "ds"
    done_build = build({"train": docs[:2], "test": docs[2:]}, SCHEMA)
    done_build.save_to_disk(str(out))
    loaded = load_from_disk(str(out))
    assert sorted(loaded) == ["test", "train"] and loaded["train"].num_rows == 2
    tags = loaded["train"].features["ner_tags"].feature
    assert tags.names == iob2_names(SCHEMA) and tags.names[:3] == ["O", "B-ACTOR", "I-ACTOR"]
    row = loaded["train"][0]
    decoded = [tags.int2str(t) for t in row["ner_tags"]]
    first = decoded.index("B-ACTOR")
    assert row["tokens"][first : first + 2] == ["الجيش", "السوري"] and decoded[first + 1] == "I-ACTOR"
    clause_names = loaded["train"].features["clauses"].feature["label"]
    assert [clause_names.int2str(c["label"]) for c in row["clauses"]] == ["CEASEFIRE", "EVACUATION"]
    rel = row["relations"][0]
    assert loaded["train"].features["relations"].feature["label"].int2str(rel["label"]) == "agent"
    assert row["tokens"][rel["child"]["start"] : rel["child"]["end"]] == ["الجيش", "السوري"]


def test_export_dataset_cli(tmp_path: Path) -> None:
    nlp = blank_arabic()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for split, rows in (("train", DATA[:2]), ("dev", DATA[2:])):
        DocBin(docs=[make_doc(nlp, *row) for row in rows], store_user_data=True).to_disk(corpus / f"{split}.spacy")
    done = runner.invoke(app, ["export-dataset", "--corpus", str(corpus), "--out", str(tmp_path / "ds")])
    assert done.exit_code == 0, done.output
    assert load_from_disk(str(tmp_path / "ds"))["dev"].num_rows == 1


@pytest.mark.integration
def test_visualize_page_renders_in_headless_chromium(tmp_path: Path, tiny_model: Path) -> None:
    DocBin(docs=[seed_doc()], store_user_data=True).to_disk(tmp_path / "gold.spacy")
    done = runner.invoke(app, ["visualize", str(tmp_path / "gold.spacy"), "--model", str(tiny_model), "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    page = tmp_path / f"{SEED}.html"
    html = page.read_text(encoding="utf-8")
    assert '<html lang="ar" dir="rtl">' in html
    assert "http://" not in html and "https://" not in html  # self-contained: nothing to fetch

    dom = chromium("--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr
    for expected in ("CLAUSE:CEASEFIRE", "ACTOR", "<th>gold</th>", "predicted (", "located_in", "حي الوعر الحمصي"):
        assert expected in dom.stdout
    shot = screenshot(page, tmp_path / "shot.png", 1200, 900)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a blank page is a few kB


def test_render_refuses_docs_of_different_texts() -> None:
    nlp = blank_arabic()
    with pytest.raises(ValueError, match="same text"):
        render_article("x", [("a", make_doc(nlp, *DATA[0])), ("b", make_doc(nlp, *DATA[1]))], SCHEMA)
