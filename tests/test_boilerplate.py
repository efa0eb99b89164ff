"""Page furniture held back from annotators, without moving any paragraph."""

import json
from pathlib import Path

import pytest

from homs_ner.data.boilerplate import boilerplate_reason, hold_back
from homs_ner.data.corpus import paragraphs

from doubles import load_articles

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "text, kind",
    [
        ("[زمان الوصل](#)", "link"),
        ("المصادر:", "colon"),
        ("مصدر الصورة Reuters", "photo credit"),
        ("وائل عصام", "byline"),
        ("المزيد حول هذه القصة", "heading"),
        ('"مجزرة طائفية"', "heading"),
    ],
)
def test_page_furniture_is_recognised(text, kind):
    assert kind in boilerplate_reason(text)


@pytest.mark.parametrize(
    "text",
    [
        "مارس/آذار 2017",  # a date heading: the guidelines label it DATE
        "أحياء حمص.. قصف وحصار وتهجير",
        "وأقرت الحكومة السورية بأن بعض مَن أجلوا من حمص جرى اعتقالهم.",
        "Image caption تمكن عمال إغاثة تابعون للأمم المتحدة والهلال الأحمر السوري من توصيل مساعدات للمدنيين",
    ],
)
def test_news_text_and_date_headings_stay(text):
    assert boilerplate_reason(text) is None


def test_seed_boilerplate_and_paragraph_ids_are_stable():
    articles = [a for a in load_articles() if a.source == "seed"]
    paras = [p for a in articles for p in paragraphs(a)]
    shown, held = hold_back(paras)
    assert len(paras) == 74 and len(shown) == 67
    # Held-back paragraphs leave gaps in the numbering rather than renumbering the rest.
    assert [p.id for p in shown] == [p.id for p in paras if p not in held]
    assert [p.id for p in held] == [
        "000_15c30e188eba9c5a:012", "000_15c30e188eba9c5a:013", "001_ae03467db424f1d2:001",
        "004_f411ea53cbc4f8f9:001", "004_f411ea53cbc4f8f9:010", "004_f411ea53cbc4f8f9:016",
        "004_f411ea53cbc4f8f9:023",
    ]


def test_every_gold_and_anchored_paragraph_keeps_its_text_and_offsets():
    """Ids, offsets and texts of every labelled paragraph are what the corpus still cuts."""
    by_id = {p.id: p for a in load_articles() for p in paragraphs(a)}
    for path in sorted((ROOT / "annotations" / "gold").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            para = by_id[record["paragraph_id"]]
            assert (para.text, para.start, para.end) == (record["text"], record["start"], record["end"])
    for path in sorted((ROOT / "annotations" / "anchored").glob("*/*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            assert json.loads(line)["paragraph_id"] in by_id, path
