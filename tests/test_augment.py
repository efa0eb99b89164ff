"""The training augmenter: new names and spellings, with entities, clauses and relations aligned."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from spacy.tokens import Doc, DocBin
from spacy.training import Example

from homs_ner.data.augment import (
    Edit,
    Rewrite,
    create_augmenter,
    load_gazetteers,
    mention_edits,
    name_like_tokens,
    orthographic_edits,
    rewrite_example,
)
from homs_ner.data.conversion import relations_of
from homs_ner.data.tokenizer import blank_arabic

from tiny_corpus import CONFIGS, DATA, make_doc

GAZETTEERS = CONFIGS / "gazetteers"


@pytest.fixture(scope="module")
def gold() -> list[Doc]:
    nlp = blank_arabic()
    return [make_doc(nlp, *row) for row in DATA]


def surfaces(doc: Doc) -> set[tuple[str, str]]:
    """Every relation as (head text, label, child text): what must survive a rewrite."""
    text = doc.text
    return {
        (text[r["head"]["start"] : r["head"]["end"]], r["label"], text[r["child"]["start"] : r["child"]["end"]])
        for r in relations_of(doc)
    }


def test_rewrite_moves_boundaries_after_each_edit() -> None:
    rewrite = Rewrite("abc def ghi", [Edit(4, 7, "XY")])
    assert rewrite.text == "abc XY ghi"
    assert [rewrite.position(p) for p in (0, 3, 4, 7, 8, 11)] == [0, 3, 4, 6, 7, 10]


def test_replacing_a_place_keeps_clauses_and_relations_aligned(gold: list[Doc]) -> None:
    nlp = blank_arabic()
    ref = gold[0]
    start = ref.text.index("الوعر")
    new = rewrite_example(nlp, Example(nlp.make_doc(ref.text), ref), [Edit(start, start + 5, "القابون الجديدة")]).reference
    assert "حي القابون الجديدة" in [e.text for e in new.ents]
    assert "وقف إطلاق النار في حي القابون الجديدة" in [c.text for c in new.spans["clauses"]]
    assert ("وقف إطلاق النار في حي القابون الجديدة", "location", "حي القابون الجديدة") in surfaces(new)
    assert len(surfaces(new)) == len(surfaces(ref))


def test_mention_edits_replace_names_not_titles_or_generic_places(gold: list[Doc]) -> None:
    names = name_like_tokens(gold)
    edits = mention_edits(gold[2], names, load_gazetteers(str(GAZETTEERS)), random.Random(0), level=1.0)
    replaced = {gold[2].text[e.start : e.end] for e in edits}
    assert "طلال البرازي" in replaced  # a person's name after the title «المحافظ»
    assert not any("المحافظ" in r for r in replaced)
    assert "حي الوعر" not in replaced  # «حي» is a designator, only the name after it may change


def test_spelling_variants_keep_the_length() -> None:
    text = "إجلاء ٢٠٠ مدني إلى مدينة إدلب"
    for variant in ("hamza", "western_digits", "taa_marbuta"):
        edits = orthographic_edits(text, variant)
        assert edits and all(len(e.text) == e.end - e.start for e in edits)


def test_augmenter_yields_the_original_first_and_aligned_variants(gold: list[Doc], tmp_path: Path) -> None:
    nlp = blank_arabic()
    corpus = tmp_path / "train.spacy"
    DocBin(docs=gold, store_user_data=True).to_disk(corpus)
    augment = create_augmenter(1.0, 1.0, str(GAZETTEERS), str(corpus), seed=3)
    for ref in gold:
        out = list(augment(nlp, Example(nlp.make_doc(ref.text), ref)))
        assert out[0].reference is ref and len(out) >= 2
        for eg in out[1:]:
            new = eg.reference
            assert len(new.ents) == len(ref.ents)
            assert len(new.spans["clauses"]) == len(ref.spans["clauses"])
            spans = {(s.start_char, s.end_char) for s in [*new.ents, *new.spans["clauses"]]}
            for rel in relations_of(new):
                assert (rel["head"]["start"], rel["head"]["end"]) in spans
                assert (rel["child"]["start"], rel["child"]["end"]) in spans
