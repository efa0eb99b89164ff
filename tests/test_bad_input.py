"""Issue 12's probes of bad input: each is a clear error naming the file (never a traceback),
or is handled without loss. Tables of cases run through the real CLI (typer's runner)."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest
from spacy.tokens import DocBin
from typer.testing import CliRunner

from homs_ner.annotations import check_inputs, merge_single_pass, read_doccano
from homs_ner.cli import app
from homs_ner.corpus import Article
from homs_ner.doccano_client import read_export_zip
from homs_ner.records import Example, Span, to_doccano
from homs_ner.schema import load_schema
from homs_ner.tokenizer import blank_arabic

SCHEMA = load_schema()
NLP = blank_arabic()
runner = CliRunner()
TEXT = "وقال مصدر إن قوات النظام دخلت حي الوعر أمس."
LS, PS = "\u2028", "\u2029"  # line and paragraph separators: legal unescaped in JSON strings


def record(text: str = TEXT, rid: int = 1, **meta: object) -> dict:
    """An export-layout Doccano record with one PLACE span («حي الوعر»)."""
    start = text.index("حي الوعر")
    span = Span(start, start + len("حي الوعر"), "PLACE", "1")
    return to_doccano(Example(text, [span], [], {"paragraph_id": f"p:{rid:03d}", **meta}), flatten_meta=True) | {"id": rid}


def jsonl(*records: dict) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Findings tables wide enough that file names are not wrapped across lines."""
    from homs_ner import cli as cli_module

    monkeypatch.setattr(cli_module.console, "width", 400)


def cli(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


# --- U+2028 / U+2029 inside texts: lines split on "\n" only -----------------------------------


def test_line_separators_inside_a_text_keep_the_record_whole(tmp_path: Path) -> None:
    text = f"وقال مصدر{LS}إن قوات النظام دخلت حي الوعر{PS}أمس."
    path = tmp_path / "ann.jsonl"
    path.write_bytes(jsonl(record(text, 1), record(TEXT, 2), {"broken": True}))
    examples, problems = read_doccano(path)
    assert [e.text for e in examples] == [text, TEXT]
    assert [(p.origin.line, p.reason) for p in problems] == [(3, "record has no `text` string")]
    assert [r["text"] for r in merge_single_pass([path])[0][:2]] == [text, TEXT]
    zpath = tmp_path / "export.zip"
    with zipfile.ZipFile(zpath, "w") as archive:
        archive.writestr("alice.jsonl", jsonl(record(text, 1)))
    assert [r["text"] for r in read_export_zip(zpath)["alice"]] == [text]
    assert [e.text for e in read_doccano(zpath)[0]] == [text]


# --- every decoding, zip, size and type problem: one line naming the file -----------------------


def _truncated_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("alice.jsonl", jsonl(*(record(TEXT, i) for i in range(1, 50))))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _corrupt_zip(path: Path) -> None:
    """A zip whose compressed member data is garbage: zlib's "Error -3 while decompressing"."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("alice.jsonl", jsonl(*(record(TEXT, i) for i in range(1, 50))))
    data = bytearray(path.read_bytes())
    start = data.index(b"alice.jsonl") + len(b"alice.jsonl")
    data[start + 10 : start + 60] = bytes(range(50))
    path.write_bytes(bytes(data))


def _offsets(value: object):
    def write(path: Path) -> None:
        rec = record()
        rec["entities"][0]["start_offset"] = value
        path.write_bytes(jsonl(rec))

    return write


BAD_ANNOTATION_FILES = {
    "not UTF-8": ("ann.jsonl", lambda p: p.write_bytes(jsonl(record()).replace("حي".encode(), b"\xe1\xff")), "not UTF-8 (byte"),
    "Latin-1": ("ann.jsonl", lambda p: p.write_bytes(json.dumps({"text": "café"}).encode("latin-1").replace(b"\\u00e9", b"\xe9")), "not UTF-8"),
    "not a zip": ("export.zip", lambda p: p.write_bytes(b"PK\x03\x04 this is not a zip"), "damaged zip"),
    "truncated zip": ("export.zip", _truncated_zip, "damaged zip"),
    "corrupt zip data": ("export.zip", _corrupt_zip, "damaged zip"),
    "5 MB record": ("ann.jsonl", lambda p: p.write_bytes(jsonl(record("حي الوعر " * 600_000))), "over the limit of 1,000,000"),
    "float offset": ("ann.jsonl", _offsets(5.9), "start_offset must be an integer, got 5.9"),
    "string offset": ("ann.jsonl", _offsets("37"), 'start_offset must be an integer, got "37"'),
    "boolean offset": ("ann.jsonl", _offsets(True), "start_offset must be an integer, got true"),
    "empty file": ("ann.jsonl", lambda p: p.write_bytes(b""), "no records to check"),
}


@pytest.mark.parametrize("case", sorted(BAD_ANNOTATION_FILES))
def test_bad_annotation_files_are_one_line_errors_naming_the_file(case: str, tmp_path: Path) -> None:
    name, make, reason = BAD_ANNOTATION_FILES[case]
    path = tmp_path / name
    make(path)
    code, output = cli("validate", path)
    assert code == 1, output
    assert reason in " ".join(output.split()), output
    assert path.name in output and "Traceback" not in output


@pytest.mark.parametrize(
    "what, reason",
    [("missing path", "no such file or folder"), ("empty folder", "folder has no .jsonl or .zip files"),
     ("folder without jsonl", "folder has no .jsonl or .zip files")],
)
def test_validate_of_nothing_is_an_error(what: str, reason: str, tmp_path: Path) -> None:
    target = tmp_path / "nothing"
    if what != "missing path":
        target.mkdir()
    if what == "folder without jsonl":
        (target / "notes.txt").write_text("x", encoding="utf-8")
    code, output = cli("validate", target)
    assert code == 1 and reason in output and "Traceback" not in output, output


def test_an_empty_file_beside_records_is_only_a_warning(tmp_path: Path) -> None:
    (tmp_path / "admin.jsonl").write_bytes(b"\n")
    (tmp_path / "alice.jsonl").write_bytes(jsonl(record()))
    checked = check_inputs([tmp_path], SCHEMA, NLP)
    assert checked.errors == [] and [p.reason for p in checked.warnings] == ["no records"]


# --- convert: partly annotated articles, stale splits ----------------------------------------

PARAS = ["قالت مصادر إن وقف إطلاق النار في حي الوعر بدأ أمس.", "وينص الاتفاق على خروج المسلحين من حي الوعر.", "وأكد المحافظ أن الأهالي سيعودون إلى حي الوعر."]
ARTICLE_TEXT = "\n\n".join(PARAS) + "\n"


def article(split: str = "train") -> Article:
    return Article("art1", "t", "o", "2015", "seed", split, ARTICLE_TEXT)


def paragraph_record(i: int) -> dict:
    start = ARTICLE_TEXT.index(PARAS[i])
    meta = {"article_id": "art1", "paragraph": i, "start": start, "end": start + len(PARAS[i]), "source": "seed", "split": "train"}
    return record(PARAS[i], i + 1, **meta) | {"paragraph_id": f"art1:{i:03d}"}


def test_convert_leaves_out_unannotated_paragraphs_with_a_warning_or_refuses(tmp_path: Path) -> None:
    from homs_ner.annotations import PartialPolicy, convert
    from homs_ner.validation import ValidationFailed

    (tmp_path / "gold.jsonl").write_bytes(jsonl(paragraph_record(0), paragraph_record(2)))
    checked, counts = convert([tmp_path / "gold.jsonl"], tmp_path / "out", SCHEMA, NLP, {"art1": article()})
    assert any("1 of 3 paragraphs of article art1 have no record (art1:001)" in p.reason for p in checked.warnings)
    doc = next(DocBin().from_disk(tmp_path / "out" / "train.spacy").get_docs(NLP.vocab))
    assert doc.text == PARAS[0] + "\n\n" + PARAS[2]  # the unannotated paragraph is not trained as "no entities"
    assert [e.text for e in doc.ents] == ["حي الوعر", "حي الوعر"]
    assert list(doc.user_data["meta"]["excluded_paragraphs"]) == ["art1:001"]
    with pytest.raises(ValidationFailed, match="annotate them or use --partial exclude"):
        convert([tmp_path / "gold.jsonl"], tmp_path / "out2", SCHEMA, NLP, {"art1": article()}, partial=PartialPolicy.error)


def test_convert_again_clears_stale_splits(tmp_path: Path) -> None:
    from homs_ner.annotations import convert

    (tmp_path / "gold.jsonl").write_bytes(jsonl(*(paragraph_record(i) for i in range(3))))
    out = tmp_path / "out"
    convert([tmp_path / "gold.jsonl"], out, SCHEMA, NLP, {"art1": article("dev")})
    assert sorted(p.name for p in out.iterdir()) == ["dev.spacy", "gold.prodigy.jsonl"]
    convert([tmp_path / "gold.jsonl"], out, SCHEMA, NLP, {"art1": article("train")})
    assert sorted(p.name for p in out.iterdir()) == ["gold.prodigy.jsonl", "train.spacy"]
