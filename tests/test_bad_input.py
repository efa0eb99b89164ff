"""Issue 12's probes of bad input: each is a clear error naming the file (never a traceback),
or is handled without loss. Tables of cases run through the real CLI (typer's runner)."""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path

import pytest
from spacy.tokens import DocBin
from typer.testing import CliRunner

from homs_ner.data.annotations import check_inputs, merge_single_pass, read_doccano
from homs_ner.cli import app
from homs_ner.data.corpus import Article
from homs_ner.doccano.client import read_export_zip
from homs_ner.data.records import Example, Span, to_doccano
from doubles import load_schema
from homs_ner.data.tokenizer import blank_arabic

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
    from homs_ner.cli import _util as cli_module

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
    from homs_ner.data.annotations import convert
    from homs_ner.data.validation import PartialPolicy
    from homs_ner.data.validation import ValidationFailed

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
    from homs_ner.data.annotations import convert

    (tmp_path / "gold.jsonl").write_bytes(jsonl(*(paragraph_record(i) for i in range(3))))
    out = tmp_path / "out"
    convert([tmp_path / "gold.jsonl"], out, SCHEMA, NLP, {"art1": article("dev")})
    assert sorted(p.name for p in out.iterdir()) == ["dev.spacy", "gold.prodigy.jsonl"]
    convert([tmp_path / "gold.jsonl"], out, SCHEMA, NLP, {"art1": article("train")})
    assert sorted(p.name for p in out.iterdir()) == ["gold.prodigy.jsonl", "train.spacy"]


# --- predict / extract: every input is a result or a named error --------------------------------

ARTICLE = "أعلن الجيش السوري وقف إطلاق النار في حي الوعر.\nوينص الاتفاق على خروج المسلحين إلى ريف حمص الشمالي."


@pytest.fixture(scope="module")
def trf_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The transformer config trained a few steps on a tiny random backbone: the pipeline whose
    TransformerFeatures.v1 crashed on an empty doc."""
    from doubles import backbone_pipeline, tiny_random_backbone
    from tiny_corpus import DATA, make_doc, train_config

    root = tmp_path_factory.mktemp("trf")
    DocBin(docs=[make_doc(NLP, *row) for row in DATA], store_user_data=True).to_disk(root / "tiny.spacy")
    backbone_pipeline(tiny_random_backbone(root / "hf", [row[0] for row in DATA])).to_disk(root / "pipe")
    return train_config("transformer.cfg", root / "out", root / "tiny.spacy", **{"paths.backbone": str(root / "pipe"), "training.max_steps": 4})


@pytest.mark.parametrize(
    "texts", [["", ARTICLE], [ARTICLE, "", ARTICLE], [ARTICLE, " \n\t"], [ARTICLE, ARTICLE, ""], ["", "  "]],
    ids=["first", "middle", "whitespace", "last", "only-empty"],
)
def test_empty_texts_give_empty_results_in_any_batch_position(texts: list[str], trf_model: Path) -> None:
    import spacy

    from homs_ner.outputs.api import analyze_many

    nlp = spacy.load(trf_model)
    results = list(analyze_many(nlp, texts, batch_size=4))
    assert [r["text"] for r in results] == texts
    assert all(r["entities"] == r["clauses"] == r["relations"] == [] for r, t in zip(results, texts) if not t.strip())
    assert [len(d) for d in nlp.pipe(texts, batch_size=4)] == [len(NLP.make_doc(t)) for t in texts]  # plain spaCy too


def write(folder: Path, name: str, data: bytes | str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def test_predict_names_unreadable_articles_goes_on_and_counts_them(tmp_path: Path, trf_model: Path) -> None:
    good = write(tmp_path, "good.txt", ARTICLE)
    crlf = write(tmp_path, "crlf.txt", ARTICLE.replace("\n", "\r\n") + "\r\n")
    empty = write(tmp_path, "empty.txt", "")
    latin = write(tmp_path, "latin.txt", "café حمص".encode("utf-8").replace("é".encode(), b"\xe9"))
    binary = write(tmp_path, "binary.txt", b"\x00\x01\x02ELF")
    out = tmp_path / "out" / "p.jsonl"
    code, output = cli("predict", trf_model, good, crlf, empty, latin, binary, "--out", out, "--batch-size", "2")
    assert code == 1
    assert "latin.txt: not UTF-8 text (byte 3" in output and "binary.txt: binary file" in output
    assert "5 input(s): 3 analysed, 2 failed" in output
    records = {r["id"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert set(records) == {"good", "crlf", "empty"}
    for name, path in (("good", good), ("crlf", crlf)):  # offsets refer to the file's text as read, CRLF kept
        text = path.read_bytes().decode("utf-8")
        assert records[name]["text"] == text
        assert all(text[e["start"] : e["end"]] == e["text"] for e in records[name]["entities"] + records[name]["clauses"])


def _not_writable(tmp: Path) -> list[str]:
    write(tmp, "blocker", "a file where the output folder should be")
    return ["--out", str(tmp / "blocker" / "p.jsonl")]


# Each fails before the model loads: the model named does not exist, and the error is not about it.
REFUSED_BEFORE_THE_MODEL = {
    "unreadable, --on-bad-input stop": (
        lambda t: [str(write(t, "a.txt", ARTICLE)), str(write(t, "b.txt", b"\xff\xfe")), "--on-bad-input", "stop"],
        "1 of 2 input(s) unreadable; nothing done",
    ),
    "same output name": (
        lambda t: [str(write(t, "d1/same.txt", ARTICLE)), str(write(t, "d2/same.txt", ARTICLE))],
        "inputs share an output name",
    ),
    "folder without .txt": (lambda t: [str(write(t, "in/notes.md", "x").parent)], "folder has no .txt files"),
    "missing file": (lambda t: [str(t / "nope.txt")], "no such file or folder"),
    "output not writable": (lambda t: [str(write(t, "a.txt", ARTICLE)), *_not_writable(t)], "output folder is not writable"),
}


@pytest.mark.parametrize("case", sorted(REFUSED_BEFORE_THE_MODEL))
def test_predict_refuses_bad_inputs_before_loading_the_model(case: str, tmp_path: Path) -> None:
    make, reason = REFUSED_BEFORE_THE_MODEL[case]
    args = make(tmp_path)
    if "--out" not in args:
        args += ["--out", str(tmp_path / "p.jsonl")]
    code, output = cli("predict", tmp_path / "no-such-model", *args)
    assert code == 1 and reason in " ".join(output.split()) and "no-such-model" not in output, output


def test_predict_batch_size_must_be_positive(tmp_path: Path) -> None:
    code, output = cli("predict", "any-model", write(tmp_path, "a.txt", ARTICLE), "--batch-size", "0")
    assert code == 2 and "--batch-size" in output


def test_extract_of_two_files_with_one_name_is_an_error(tmp_path: Path, trf_model: Path) -> None:
    code, output = cli("extract", "--model", trf_model, write(tmp_path, "d1/same.txt", ARTICLE), write(tmp_path, "d2/same.txt", ARTICLE),
                       "--out", tmp_path / "x")
    assert code == 1 and "inputs share an output name" in output and not (tmp_path / "x" / "same.json").exists()
    code, output = cli("extract", "--model", trf_model, write(tmp_path, "a.txt", ARTICLE), write(tmp_path, "e.txt", ""),
                       write(tmp_path, "bad.txt", b"\xff"), "--out", tmp_path / "y")
    assert code == 1 and "3 input(s): 2 extracted, 1 failed" in output
    assert sorted(p.name for p in (tmp_path / "y").iterdir()) == ["a.json", "clauses.csv", "e.json"]


# --- long articles: bounded windows, offsets mapped back --------------------------------------


def test_windows_cover_the_text_and_stay_bounded() -> None:
    from homs_ner.outputs.inference import windows

    text = ("جملة قصيرة هنا. " * 40 + "\n") * 30 + "كلمة" * 500 + " " + "حرف" * 3
    cuts = windows(text, 300)
    assert cuts[0][0] == 0 and cuts[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(cuts, cuts[1:]))  # contiguous: nothing lost, nothing twice
    assert all(e - s <= 300 for s, e in cuts)
    assert sum(text[e - 1] == "\n" for _, e in cuts) >= 25  # line ends are the preferred cuts
    assert windows("قصير", 300) == [(0, 4)]


def test_a_long_article_in_windows_keeps_its_offsets(trf_model: Path) -> None:
    import spacy

    from homs_ner.outputs.inference import pipe_articles, windows

    nlp = spacy.load(trf_model)
    text = "\n".join([ARTICLE] * 12) + "\n"
    doc = next(pipe_articles(nlp, [text], max_chars=250))
    assert doc.text == text and [t.text for t in doc] == [t.text for t in NLP.make_doc(text)]
    expected, relations = [], []
    for start, end in windows(text, 250):  # each window alone, shifted by hand to article offsets
        part = nlp(text[start:end])
        expected += [(e.start_char + start, e.end_char + start, e.label_) for e in part.ents]
        relations += [(r["head"]["start"] + start, r["child"]["start"] + start, r["label"]) for r in part._.relations]
    assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == expected and expected
    assert [(r["head"]["start"], r["child"]["start"], r["label"]) for r in doc._.relations] == relations


# --- tokenizer: real patterns of scraped news ------------------------------------------------

TOKENS = [
    ("يبدأ الأسبوع المقبل.وينص الاتفاق", ["يبدأ", "الأسبوع", "المقبل", ".", "وينص", "الاتفاق"]),
    ("خلال شهرين\".", ["خلال", "شهرين", "\"", "."]),
    ("خلال شهرين\".وقال", ["خلال", "شهرين", "\"", ".", "وقال"]),
    ("الأسبوع المقبل.\"وينص", ["الأسبوع", "المقبل", ".", "\"", "وينص"]),
    ("في حمص،وقال مصدر", ["في", "حمص", "،", "وقال", "مصدر"]),
    ("قال:\"إن الهدنة", ["قال", ":", "\"", "إن", "الهدنة"]),
    ("في عام 2016.وقال", ["في", "عام", "2016", ".", "وقال"]),
    ("الأمم المتحدة؟وقال", ["الأمم", "المتحدة", "؟", "وقال"]),
    ("بنسبة 3.5%.", ["بنسبة", "3.5", "%", "."]),
    # not split: numbers, one-letter abbreviations, URLs, Latin abbreviations, times
    ("نسبة 2.5 بالمئة", ["نسبة", "2.5", "بالمئة"]),
    ("نسبة ٢.٥ بالمئة", ["نسبة", "٢.٥", "بالمئة"]),
    ("ص.ب 123", ["ص.ب", "123"]),
    ("موقع www.sana.sy اليوم", ["موقع", "www.sana.sy", "اليوم"]),
    ("https://ar.wikipedia.org/wiki/حمص", ["https://ar.wikipedia.org/wiki/حمص"]),
    ("قوات U.N. في", ["قوات", "U.N.", "في"]),
    ("الساعة 10:30 صباحا", ["الساعة", "10:30", "صباحا"]),
]


@pytest.mark.parametrize("text, tokens", TOKENS, ids=[t for t, _ in TOKENS])
def test_tokenizer_splits_glued_punctuation_of_real_news(text: str, tokens: list[str]) -> None:
    assert [t.text for t in NLP.make_doc(text)] == tokens


def test_a_span_the_new_rules_make_representable_validates_without_repair() -> None:
    from homs_ner.data.records import Origin
    from homs_ner.data.validation import check_example

    text = "وينص الاتفاق على التنفيذ الأسبوع المقبل.وينص أيضا على خروج المسلحين خلال شهرين\".وقال مصدر"
    spans = [Span(*(lambda s: (s, s + len(n)))(text.index(n)), label, i) for i, (n, label) in
             enumerate([("الأسبوع المقبل", "DATE"), ("شهرين", "QUANTITY")])]
    clean, problems = check_example(Example(text, spans, [], {}, "a", Origin()), SCHEMA, NLP, offsets="python")
    assert problems == [] and [(s.start, s.end) for s in clean.spans] == [(s.start, s.end) for s in spans]


def test_evaluation_expands_gold_spans_that_the_pipelines_tokens_cut() -> None:
    import spacy

    from homs_ner.evaluate.evaluation import seqeval_entities, with_gold_spans

    text = "بدأ التنفيذ الأسبوع المقبل.وينص الاتفاق"
    gold = NLP.make_doc(text)
    start = text.index("المقبل")
    gold.ents = [gold.char_span(text.index("الأسبوع"), start + len("المقبل"), label="DATE")]
    old_rules = spacy.blank("ar")  # spaCy's own Arabic tokenizer keeps «المقبل.وينص» whole
    assert "المقبل.وينص" in [t.text for t in old_rules.make_doc(text)]
    on_gold = with_gold_spans(old_rules, gold, SCHEMA)
    assert [e.text for e in on_gold.ents] == ["الأسبوع المقبل.وينص"]  # expanded, not dropped
    assert seqeval_entities([gold], [on_gold])["DATE"]["support"] == 1


# --- model commands: missing or wrong pipelines and DocBins ------------------------------------


def test_model_commands_name_a_missing_or_wrong_pipeline_or_docbin(tmp_path: Path) -> None:
    """evaluate and tune-relations fail in one line naming the path, before any work."""
    not_docbin = tmp_path / "notes.txt"
    not_docbin.write_text(TEXT, encoding="utf-8")
    empty = tmp_path / "train.spacy"
    DocBin().to_disk(empty)
    cases = [
        (["evaluate", "only-a-name"], "give models as NAME=PATH"),
        (["evaluate", f"x={tmp_path / 'nothing'}", "--train", empty], f"pipeline {tmp_path / 'nothing'}: not found"),
        (["evaluate", f"x={tmp_path}", "--train", empty], f"pipeline {tmp_path}: cannot be loaded"),
        (["evaluate", f"x={tmp_path}", "--train", not_docbin], f"{not_docbin}: not a spaCy DocBin"),
        (["tune-relations", tmp_path / "nothing"], "not found"),
        (["cross-validate", "--by", "article"], "--by must be seed or event"),
    ]
    for args, message in cases:
        code, output = cli(*args)
        assert code == 1 and message in output, (args, output)


def test_a_broken_stored_fold_is_named_not_retrained_over(tmp_path: Path) -> None:
    """cross-validate's fold store: a file that is not a fold's scores is an error naming it
    and why (it may be the only copy of an hour's training), never a traceback."""
    from homs_ner.evaluate.experiments import FoldStoreError, read_fold

    cases = {
        "cut.json": ("{\"docs\": 3,", "not JSON (line 1"),
        "latin.json": (b"\xff\xfe{}", "not UTF-8 text"),
        "other.json": ("[1, 2]", "no entities_seqeval, clauses, relations_end_to_end in it"),
    }
    for name, (content, reason) in cases.items():
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        with pytest.raises(FoldStoreError, match=re.escape(reason)) as raised:
            read_fold(path)
        assert str(path) in str(raised.value) and "delete it" in str(raised.value)
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"entities_seqeval": {}, "clauses": {}, "relations_end_to_end": {}}), encoding="utf-8")
    assert read_fold(good)["clauses"] == {}
