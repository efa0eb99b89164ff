"""Text-anchored annotation files resolve to exact offsets, or say precisely why not."""

import json

from homs_ner.data.corpus import Article, paragraphs
from homs_ner.doccano.anchored import read_anchored

TEXT = "خرج المقاتلون من حمص إلى ريف حمص الشمالي."
ARTICLE = Article("a", "t", "o", "2014", "seed", "train", TEXT + "\n")
PARAS = {p.id: p for p in paragraphs(ARTICLE)}


def run(tmp_path, *records):
    path = tmp_path / "ann.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return read_anchored(path, PARAS)


def test_occurrences_and_nesting_resolve_to_offsets(tmp_path):
    record = {
        "paragraph_id": "a:000",
        "spans": [
            {"id": "c", "label": "CLAUSE:EVACUATION", "text": "خرج المقاتلون من حمص إلى ريف حمص الشمالي"},
            {"id": "x", "label": "ACTOR", "text": "المقاتلون", "in": "c"},
            {"id": "p1", "label": "PLACE", "text": "حمص"},
            {"id": "p2", "label": "PLACE", "text": "ريف حمص الشمالي"},
        ],
        "relations": [["c", "agent", "x"], ["c", "destination", "p2"]],
    }
    (example,), problems = run(tmp_path, record)
    assert problems == []
    got = {s.id: TEXT[s.start:s.end] for s in example.spans}
    assert got == {"c": record["spans"][0]["text"], "x": "المقاتلون", "p1": "حمص", "p2": "ريف حمص الشمالي"}
    assert example.spans[2].start == TEXT.index("حمص")
    assert example.meta["paragraph_id"] == "a:000" and len(example.relations) == 2


def test_errors_name_file_line_and_reason(tmp_path):
    records = [
        {"paragraph_id": "a:000", "spans": [{"id": "p", "label": "PLACE", "text": "حمص", "n": 3}]},
        {"paragraph_id": "a:000", "spans": [{"id": "p", "label": "PLACE", "text": "حمص"}, {"id": "q", "label": "PLACE", "text": "حمص"}]},
        {"paragraph_id": "zz:000", "spans": []},
        {"paragraph_id": "a:000", "spans": [{"id": "x", "label": "ACTOR", "text": "المقاتلون", "in": "c"}], "relations": [["x", "agent"]]},
    ]
    _, problems = run(tmp_path, *records)
    found = [(p.origin.line, p.reason) for p in problems]
    assert found[0][0] == 1 and "occurrence 3 of «حمص» not found" in found[0][1]
    assert found[1][0] == 2 and "are the same «حمص»; use `n`" in found[1][1]
    assert found[2][0] == 3 and "unknown paragraph_id 'zz:000'" in found[2][1]
    assert found[3][0] == 4 and "not an earlier span" in found[3][1]
    assert "is not [head, label, child]" in found[4][1]
