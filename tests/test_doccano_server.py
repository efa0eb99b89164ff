"""The Doccano layer against a real Doccano 1.8.4 server (one for the whole session)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from homs_ner.cli.defaults import default_venv
from homs_ner.doccano import server_env as doccano_server
from homs_ner.doccano.client import DoccanoClient, read_export_zip
from homs_ner.doccano.server import DoccanoServer
from homs_ner.doccano.server_env import DoccanoServerError, install_server_venv
from homs_ner.doccano.types import DoccanoAuthError, DoccanoConnectionError, DoccanoNotFoundError, LabelType

pytestmark = pytest.mark.integration

ANNOTATOR = "flow-annotator"
ANNOTATOR_PASSWORD = "Homs-Annotator-2016"
ARABIC = "قوات النظام في حي الوعر بحمص"
EMOJI = "\U0001F54A هدنة في حمص"  # the dove is one code point but two UTF-16 code units


def utf16(text: str, index: int) -> int:
    """Python str index -> Doccano offset (UTF-16 code units)."""
    return len(text[:index].encode("utf-16-le")) // 2


def server_span(text: str, needle: str) -> tuple[int, int]:
    start = text.index(needle)
    return utf16(text, start), utf16(text, start + len(needle))


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def by_text(types: list[LabelType]) -> dict[str, LabelType]:
    return {t["text"]: t for t in types}


def test_annotate_as_annotator_then_export_as_admin(
    doccano_server: DoccanoServer, doccano_admin: DoccanoClient, tmp_path: Path
) -> None:
    admin = doccano_admin
    project = admin.create_project(unique("homs-flow"), "Homs ceasefire news", "Mark actors and places.")
    pid = project["id"]
    assert project["resourcetype"] == "SequenceLabelingProject"
    assert (project["allow_overlapping"], project["use_relation"], project["grapheme_mode"]) == (True, True, False)

    actor = admin.create_span_type(pid, "ACTOR", "#d32f2f", suffix_key="a")
    place = admin.create_span_type(pid, "PLACE", "#1976d2", suffix_key="p", prefix_key="shift")
    located = admin.create_relation_type(pid, "located_in", "#ff9800", suffix_key="l")
    admin.update_span_type(pid, actor["id"], background_color="#b71c1c")
    spans_by_text = by_text(admin.span_types(pid))
    assert spans_by_text["ACTOR"]["background_color"] == "#b71c1c" and spans_by_text["ACTOR"]["suffix_key"] == "a"
    assert (spans_by_text["PLACE"]["prefix_key"], spans_by_text["PLACE"]["suffix_key"]) == ("shift", "p")
    assert by_text(admin.relation_types(pid))["located_in"]["background_color"] == "#ff9800"

    ex_ar = admin.create_example(pid, ARABIC, {"doc_id": "d1", "para": 0})
    ex_emoji = admin.create_example(pid, EMOJI, {"doc_id": "d2", "para": 3})
    assert [e["meta"] for e in admin.examples(pid)] == [{"doc_id": "d1", "para": 0}, {"doc_id": "d2", "para": 3}]

    doccano_server.create_user(ANNOTATOR, ANNOTATOR_PASSWORD)
    member = admin.add_member(pid, ANNOTATOR)
    assert member["rolename"] == "annotator"

    with DoccanoClient.login(doccano_server.url, ANNOTATOR, ANNOTATOR_PASSWORD) as annotator:
        a_start, a_end = server_span(ARABIC, "قوات النظام")
        s_actor = annotator.create_span(pid, ex_ar["id"], a_start, a_end, actor["id"])
        s_place = annotator.create_span(pid, ex_ar["id"], *server_span(ARABIC, "حي الوعر"), place["id"])
        relation = annotator.create_relation(pid, ex_ar["id"], s_actor["id"], s_place["id"], located["id"])
        e_start, e_end = server_span(EMOJI, "حمص")
        assert (e_start, e_end) == (EMOJI.index("حمص") + 1, len(EMOJI) + 1)  # one extra unit for the emoji
        annotator.create_span(pid, ex_emoji["id"], e_start, e_end, place["id"])
        for example in (ex_ar, ex_emoji):
            annotator.set_confirmed(pid, example["id"], True)
            annotator.set_confirmed(pid, example["id"], True)  # no toggle back
            assert annotator.example(pid, example["id"])["is_confirmed"] is True
        emoji_spans = annotator.spans(pid, ex_emoji["id"])
        assert [(s["start_offset"], s["end_offset"]) for s in emoji_spans] == [(e_start, e_end)]
        assert [r["type"] for r in annotator.relations(pid, ex_ar["id"])] == [located["id"]]
        with pytest.raises(DoccanoAuthError) as refused:
            annotator.export(pid, tmp_path)
        assert refused.value.status == 403

    assert admin.spans(pid, ex_ar["id"]) == []  # non-collaborative: admins see their own spans only

    exported = read_export_zip(admin.export(pid, tmp_path, timeout=60))
    assert set(exported) == {"admin", ANNOTATOR}
    records = {r["doc_id"]: r for r in exported[ANNOTATOR]}
    ar, emoji = records["d1"], records["d2"]
    assert (ar["id"], ar["text"], ar["para"]) == (ex_ar["id"], ARABIC, 0)
    assert sorted((e["label"], e["start_offset"], e["end_offset"]) for e in ar["entities"]) == [
        ("ACTOR", a_start, a_end),
        ("PLACE", *server_span(ARABIC, "حي الوعر")),
    ]
    assert [(r["from_id"], r["to_id"], r["type"]) for r in ar["relations"]] == [
        (s_actor["id"], s_place["id"], "located_in")
    ]
    assert relation["from_id"] == s_actor["id"]
    assert [(e["label"], e["start_offset"], e["end_offset"]) for e in emoji["entities"]] == [("PLACE", e_start, e_end)]
    assert all(r["entities"] == [] for r in exported["admin"])

    approved = read_export_zip(admin.export(pid, tmp_path, only_approved=True, timeout=60))
    assert (len(approved[ANNOTATOR]), approved["admin"]) == (2, [])


def test_add_member_and_create_user_are_idempotent(
    doccano_server: DoccanoServer, doccano_admin: DoccanoClient
) -> None:
    pid = doccano_admin.create_project(unique("homs-members"), "d", "g")["id"]
    user = doccano_server.create_user("member-annotator", "Homs-Annotator-2017")
    assert doccano_server.create_user("member-annotator", "ignored-Password-1")["id"] == user["id"]
    first = doccano_admin.add_member(pid, "member-annotator")
    assert doccano_admin.add_member(pid, "member-annotator") == first
    approver = doccano_admin.add_member(pid, "member-annotator", role="annotation_approver")
    assert (approver["id"], approver["rolename"]) == (first["id"], "annotation_approver")
    assert sorted(m["username"] for m in doccano_admin.members(pid)) == ["admin", "member-annotator"]


def test_find_project_and_pagination(doccano_admin: DoccanoClient) -> None:
    name = unique("homs-find")
    created = doccano_admin.create_project(name, "d", "g")
    assert doccano_admin.find_project(name) == created
    assert doccano_admin.find_project(name[:-1]) is None  # the server's search is a substring match
    for i in range(7):
        doccano_admin.create_example(created["id"], f"مثال {i}", {"i": i})
    small_pages = DoccanoClient(doccano_admin.base_url, token=doccano_admin.token, page_size=3)
    with small_pages:
        assert [e["meta"]["i"] for e in small_pages.examples(created["id"])] == list(range(7))
    doccano_admin.delete_project(created["id"])
    assert doccano_admin.find_project(name) is None


def test_wrong_password_is_an_auth_error(doccano_server: DoccanoServer) -> None:
    with pytest.raises(DoccanoAuthError) as caught:
        DoccanoClient.login(doccano_server.url, doccano_server.admin_username, "not-the-password")
    assert caught.value.status == 400


def test_unknown_project_is_not_found(doccano_admin: DoccanoClient) -> None:
    with pytest.raises(DoccanoNotFoundError) as caught:
        doccano_admin.span_types(999999)
    assert caught.value.detail == "No Project matches the given query."


def test_closed_port_says_the_server_is_not_running() -> None:
    port = doccano_server.free_port()
    with pytest.raises(DoccanoConnectionError, match="homs-ner doccano serve"):
        DoccanoClient.login(f"http://127.0.0.1:{port}", "admin", "x")


def test_a_busy_port_fails_fast(doccano_server: DoccanoServer, tmp_path: Path) -> None:
    with pytest.raises(DoccanoServerError, match="already in use"):
        DoccanoServer(tmp_path, venv=doccano_server.venv, port=doccano_server.port).start()
    assert not (tmp_path / "db.sqlite3").exists()


def test_install_server_venv_skips_a_working_venv(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_install(*args: object) -> None:
        raise AssertionError("must not reinstall a working venv")

    monkeypatch.setattr(doccano_server, "_run_install_step", no_install)
    install_server_venv(default_venv())


def test_install_server_venv_explains_a_missing_python(tmp_path: Path) -> None:
    with pytest.raises(DoccanoServerError, match="python3.0-missing not found"):
        install_server_venv(tmp_path / "venv", python="python3.0-missing")
