"""Pre-annotation against a real Doccano: a trained pipeline's suggestions land in an
annotator's own view, marked as the model's, and never touch work the annotator did."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import spacy

from homs_ner.data.corpus import Article, paragraphs
from homs_ner.doccano.client import DoccanoClient
from homs_ner.doccano.preannotate import PREANNOTATION_MARK, preannotate
from homs_ner.doccano.sync import create_annotation, pull, push
from tiny_corpus import DATA, SCHEMA

pytestmark = pytest.mark.integration

USER, PASSWORD = "corrector", "Homs-Corrector-2014"
# Two paragraphs the tiny model was trained on (it reproduces them), one the annotator did by hand.
ARTICLE = Article("pre_it", "عنوان", "outlet", "2016-12", "synthetic", "train", "\n\n".join(row[0] for row in DATA) + "\n")


def test_preannotate_suggests_marks_and_never_overwrites(doccano_server, doccano_admin, tiny_model: Path, tmp_path) -> None:
    paras = paragraphs(ARTICLE)
    pid = push(doccano_admin, "preannotate", SCHEMA, "guide", paras).project_id
    doccano_server.create_user(USER, PASSWORD)
    doccano_admin.add_member(pid, USER)
    nlp = spacy.load(tiny_model)
    with DoccanoClient.login(doccano_server.url, USER, PASSWORD) as client:
        by_pid = {e["meta"]["paragraph_id"]: e for e in client.examples(pid)}
        span_types = {t["text"]: t["id"] for t in client.span_types(pid)}
        relation_types = {t["text"]: t["id"] for t in client.relation_types(pid)}
        hand = by_pid[paras[-1].id]
        start = hand["text"].index("الأهالي")
        create_annotation(client, pid, hand["id"], hand["text"], [(start, start + 7, "ACTOR")], [], span_types, relation_types)

        report = preannotate(client, "preannotate", nlp, SCHEMA, "tiny-model")
        assert (report.skipped, report.preannotated) == (1, len(paras) - 1)
        assert report.spans > 0 and report.relations > 0

        suggested = by_pid[paras[0].id]
        spans = client.spans(pid, suggested["id"])
        assert spans and all(s["prob"] > 0 for s in spans)
        assert all(r["prob"] > 0 for r in client.relations(pid, suggested["id"]))
        (comment,) = client.comments(pid, suggested["id"])
        assert comment["text"].startswith(f"{PREANNOTATION_MARK} by tiny-model")
        assert client.example(pid, suggested["id"])["is_confirmed"] is False

        (mine,) = client.spans(pid, hand["id"])  # the hand-made span alone, untouched
        assert (mine["start_offset"], mine["prob"]) == (start, 0.0)

        # The annotator deletes every suggestion of one example: running again adds nothing back.
        for span in spans:
            client.delete_span(pid, suggested["id"], span["id"])
        again = preannotate(client, "preannotate", nlp, SCHEMA, "tiny-model")
        assert (again.preannotated, again.skipped) == (0, len(paras))
        assert client.spans(pid, suggested["id"]) == []

    written = pull(doccano_admin, "preannotate", tmp_path)
    records = (tmp_path / f"{USER}.jsonl").read_text(encoding="utf-8").splitlines()
    assert USER in written and len(records) == len(paras)


def test_preannotate_reads_per_project_and_writes_one_request_per_suggestion(
    doccano_server, doccano_admin, tiny_model: Path
) -> None:
    """What exists is read per project, so reads do not grow with the examples; each span,
    relation and mark is one POST (Doccano 1.8.4 has no bulk create)."""
    article = Article("bulk_it", "عنوان", "outlet", "2016-12", "synthetic", "train", "\n\n".join(row[0] for row in DATA * 3) + "\n")
    paras = paragraphs(article)
    page = 4
    pid = push(doccano_admin, "bulk", SCHEMA, "guide", paras).project_id
    doccano_server.create_user("bulk_corrector", PASSWORD)
    doccano_admin.add_member(pid, "bulk_corrector")
    nlp = spacy.load(tiny_model)
    with DoccanoClient.login(doccano_server.url, "bulk_corrector", PASSWORD, page_size=page) as client:
        pages = math.ceil(len(paras) / page)
        # project, span types, relation types, pages of examples, me, pages of pre-annotation comments
        for run, done, reads in (("first", len(paras), 3 + pages + 1 + 1), ("again", 0, 3 + pages + 1 + pages)):
            mine, admins = client.requests.by_method(), doccano_admin.requests.by_method()
            report = preannotate(client, "bulk", nlp, SCHEMA, "tiny-model", admin=doccano_admin, workers=2)
            assert (report.preannotated, report.skipped) == (done, len(paras) - done), run
            sent = _since(mine, client.requests.by_method())
            assert sent.get("GET", 0) == reads, run
            assert sent.get("POST", 0) == report.spans + report.relations + report.preannotated, run
            export = _since(admins, doccano_admin.requests.by_method())
            if done:  # one export: start it, poll, download; none when every example is marked
                assert export["POST"] == 1 and export["GET"] >= 2
            else:
                assert export == {}


def _since(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {method: count - before.get(method, 0) for method, count in after.items() if count > before.get(method, 0)}
