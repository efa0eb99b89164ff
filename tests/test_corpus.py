"""Corpus layout, paragraph cutting and the seed-overlap check."""

import json

import pytest
from hypothesis import given, strategies as st

from homs_ner.data.corpus import (
    CorpusError, paragraph_spans, paragraphs, seed_overlaps, shared_ngrams, write_paragraphs,
)
from homs_ner.data.tokenizer import blank_arabic

from doubles import load_articles


def test_seed_articles_are_in_the_corpus_as_given():
    articles = {a.id: a for a in load_articles()}
    for seed in ("000_15c30e188eba9c5a", "001_ae03467db424f1d2", "002_80ce11c145007b05",
                 "003_7eacd49ffdb26e13", "004_f411ea53cbc4f8f9"):
        assert articles[seed].source == "seed"
    assert {a.id for a in articles.values() if a.split == "test"} == {"002_80ce11c145007b05", "004_f411ea53cbc4f8f9"}
    assert all(a.split != "test" for a in articles.values() if a.source == "synthetic")


def test_every_paragraph_maps_back_to_its_article():
    for article in load_articles():
        for p in paragraphs(article):
            assert article.text[p.start:p.end] == p.text
            assert p.text == p.text.strip() and p.text
            assert len(p.text) <= 700 or "." not in p.text


def test_single_line_article_is_cut_at_sentences():
    seed_003 = next(a for a in load_articles() if a.id.startswith("003_"))
    assert "\n" not in seed_003.text.strip()
    assert len(paragraphs(seed_003)) > 1


@given(st.lists(st.text(alphabet="اب ت.\n؟", min_size=0, max_size=80), max_size=6))
def test_paragraph_spans_cover_all_non_space_text(lines):
    text = "\n".join(lines)
    spans = paragraph_spans(text, max_chars=20)
    covered = "".join(text[s:e] for s, e in spans)
    assert covered.replace(" ", "").replace("\n", "") == text.replace(" ", "").replace("\n", "")
    assert all(s < e for s, e in spans)
    assert all(e1 <= s2 for (_, e1), (s2, _) in zip(spans, spans[1:]))


def test_write_paragraphs_is_doccano_upload_jsonl(tmp_path):
    out = tmp_path / "p.jsonl"
    n = write_paragraphs(load_articles()[:1], out)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == n
    first = json.loads(lines[0])
    assert set(first) == {"text", "meta"} and first["meta"]["paragraph"] == 0


def test_bad_metadata_names_file_and_line(tmp_path):
    (tmp_path / "articles").mkdir()
    (tmp_path / "articles.jsonl").write_text(
        '{"id": "a", "title": "t", "outlet": "o", "date": "2014", "source": "synthetic", "split": "test"}\n',
        encoding="utf-8",
    )
    with pytest.raises(CorpusError, match=r"articles.jsonl:1: synthetic article a cannot be in the test split"):
        load_articles(tmp_path)


def test_shared_ngrams_finds_copied_passages():
    seeds = {"s": "a b c d e f g h i j".split()}
    assert shared_ngrams({"x": "z a b c d e f g h q".split()}, seeds) == {"x": [("s", tuple("abcdefgh"))]}
    assert shared_ngrams({"y": "a b c d e f g q h".split()}, seeds) == {}


def test_no_synthetic_article_shares_8_tokens_with_a_seed():
    """The project's paraphrase check, run on the committed corpus."""
    nlp = blank_arabic()
    assert seed_overlaps(load_articles(), lambda t: [x.text for x in nlp.make_doc(t) if not x.is_space], 8) == {}


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("في عام 2012. وقال", ["في", "عام", "2012", ".", "وقال"]),
        ("ضغط\". ثم تقريباً.", ["ضغط", '"', ".", "ثم", "تقريباً", "."]),
        ('و"الثوار" و«جبهة النصرة»', ["و", '"', "الثوار", '"', "و", "«", "جبهة", "النصرة", "»"]),
        ("لـrsquo;القدس العربيrsquo;", ["لـ", "rsquo;", "القدس", "العربي", "rsquo;"]),
        ("بحمص والثوار 3.5 مليون", ["بحمص", "والثوار", "3.5", "مليون"]),
        ("الوعر -آخر مناطق حمص- تحت", ["الوعر", "-", "آخر", "مناطق", "حمص", "-", "تحت"]),
    ],
)
def test_tokenizer_splits_punctuation_but_keeps_proclitics(text, tokens):
    assert [t.text for t in blank_arabic().make_doc(text)] == tokens
