"""`extract-archive` and `query`: the three input formats, ids, bad records, both engines,
a killed driver and a killed Ray worker, and the named queries, on the tiny trained pipeline.

Ray starts once for the module (`ray_session`), with the tests folder on the workers'
PYTHONPATH so that they can import the fault-injecting worker of `doubles`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from homs_ner.cli import app
from homs_ner.outputs import archive
from homs_ner.outputs.archive import ArticleWorker, plan_archive, run_archive
from homs_ner.outputs.archive_input import content_id, month_of, read_archive
from homs_ner.outputs.inputs import InputError
from homs_ner.outputs.store import COMMITS, TABLES, ArchiveStore, StoreError
from doubles import CrashOnceWorker
from tiny_corpus import DATA, SCHEMA

runner = CliRunner()
TESTS = Path(__file__).parent
MONTHS = ("2014-01-15", "2016-12", None)


def archive_records(n: int) -> list[dict]:
    """`n` articles from the tiny corpus's texts, each made distinct, over three months (one unknown)."""
    return [
        {"id": f"art-{i:04d}", "text": f"{DATA[i % len(DATA)][0]}\nالخبر رقم {i}.", "date": MONTHS[i % 3],
         "outlet": "test", "url": None}
        for i in range(n)
    ]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def extract(source: Path, model: Path, out: Path, **options) -> archive.RunSummary:
    """The library path of `extract-archive`."""
    return run_archive(plan_archive(source, str(model), out), str(model), SCHEMA, **options)


def store_rows(out: Path) -> dict[str, list[tuple]]:
    """Every table's rows, sorted: what two runs must agree on exactly."""
    con = ArchiveStore(out).connect()
    try:
        return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}
    finally:
        con.close()


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("archive") / "articles.jsonl", archive_records(40))


@pytest.fixture(scope="module")
def reference(source: Path, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple]]:
    """One uninterrupted local run over `source`: what every other run must reproduce."""
    out = tmp_path_factory.mktemp("reference") / "store"
    summary = extract(source, tiny_model, out, batch_size=4)
    assert (summary.given, summary.articles, summary.errors) == (40, 40, 0)
    return store_rows(out)


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    """One local Ray (2 CPUs) for the module; workers import `doubles` from the tests folder."""
    import ray

    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), *sys.path, old) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        if old is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = old


# --- input -------------------------------------------------------------------------------


def test_ids_are_kept_or_made_from_the_text_and_dates_give_the_month(tmp_path: Path) -> None:
    text = DATA[0][0]
    records, problems = read_archive(write_jsonl(tmp_path / "a.jsonl", [
        {"id": "kept", "text": text}, {"id": 7, "text": text + "!"}, {"text": text + "?"},
    ]))
    assert not problems
    assert [r.id for r in records] == ["kept", "7", content_id(text + "?")]
    assert content_id(text) == content_id(text) != content_id(text + " ")
    assert [month_of(d) for d in ("2016-12-01", "2016-12", "2016", "2016-13-01", None, "Dec 2016")] == [
        "2016-12", "2016-12", "unknown", "unknown", "unknown", "unknown"]


def test_bad_records_are_problems_naming_their_line_and_the_rest_is_read(tmp_path: Path) -> None:
    good = {"id": "good", "text": DATA[0][0]}
    lines = [json.dumps(good, ensure_ascii=False), "{not json", "[1, 2]", json.dumps({"id": "no-text"}),
             json.dumps({"id": "blank", "text": " \n "}), json.dumps({"id": "good", "text": "again"}),
             json.dumps({"id": ["x"], "text": "t"}), json.dumps({"id": "d", "text": "t", "date": 2016})]
    path = tmp_path / "a.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8") + b'{"id": "bytes", "text": "\xff"}\n')
    records, problems = read_archive(path)
    assert [r.id for r in records] == ["good"]
    reasons = {p.reason.removeprefix(f"{path}:") for p in problems}
    assert reasons == {
        "2: not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        "3: expected a JSON object, got list", "4: no text field", "5: empty text",
        f"6: duplicate id 'good' (first at {path}:1)", "7: id must be a non-empty string or an integer, got ['x']",
        "8: date must be a string, got int", "9: not UTF-8 (byte 25)",
    }


@pytest.mark.parametrize("case,reason", [
    ("missing", "no such file or folder"), ("csv", "not a .jsonl or .parquet file"),
    ("mixed", "folder mixes .txt and .parquet files"), ("no-text", "Parquet file has no `text` column"),
    ("broken", "not a readable Parquet file"),
])
def test_an_unusable_input_is_one_error_naming_it(case: str, reason: str, tmp_path: Path) -> None:
    path = {"missing": tmp_path / "nope.jsonl", "csv": tmp_path / "a.csv", "mixed": tmp_path,
            "no-text": tmp_path / "a.parquet", "broken": tmp_path / "b.parquet"}[case]
    (tmp_path / "a.csv").write_text("id,text\n")
    (tmp_path / "x.txt").write_text("نص")
    pq.write_table(pa.table({"id": ["a"], "body": ["b"]}), tmp_path / "a.parquet")
    (tmp_path / "b.parquet").write_bytes(b"PAR1 not parquet")
    with pytest.raises(InputError, match=reason) as err:
        read_archive(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_the_three_input_formats_give_the_same_rows(tmp_path: Path, tiny_model: Path) -> None:
    records = [{**r, "date": None, "outlet": None} for r in archive_records(6)]
    txt = tmp_path / "txt"
    txt.mkdir()
    for r in records:
        (txt / f"{r['id']}.txt").write_text(r["text"], encoding="utf-8")
    parquet = tmp_path / "parquet"
    parquet.mkdir()
    pq.write_table(pa.Table.from_pylist(records[:3]), parquet / "part-0.parquet")
    pq.write_table(pa.Table.from_pylist(records[3:]), parquet / "part-1.parquet")
    sources = {"txt": txt, "jsonl": write_jsonl(tmp_path / "a.jsonl", records), "parquet": parquet}
    rows = {}
    for name, path in sources.items():
        extract(path, tiny_model, tmp_path / name, batch_size=4)
        rows[name] = store_rows(tmp_path / name)
    assert rows["txt"] == rows["jsonl"] == rows["parquet"]
    assert sorted(r[0] for r in rows["txt"]["articles"]) == [r["id"] for r in records]
    assert rows["txt"]["clauses"] and all(r[6] is not None for r in rows["txt"]["clauses"]), "every clause has its score"


# --- bad articles, counts ----------------------------------------------------------------


def test_bad_articles_land_in_errors_and_in_equals_out_plus_errors(tmp_path: Path, tiny_model: Path) -> None:
    source = tmp_path / "a.jsonl"
    write_jsonl(source, archive_records(5))
    with source.open("a", encoding="utf-8") as handle:
        handle.write('{"id": "broken"\n' + json.dumps({"id": "empty", "text": ""}) + "\n")
    result = runner.invoke(app, ["extract-archive", str(source), "--model", str(tiny_model), "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert "7 in = 5 articles + 2 errors" in " ".join(result.output.split())
    rows = store_rows(tmp_path / "s")
    assert sorted(r[0] for r in rows["errors"]) == [f"{source}:6", "empty"]
    assert len(rows["articles"]) == 5


def test_an_article_the_pipeline_fails_on_is_an_error_and_its_batch_goes_on(tiny_model: Path) -> None:
    """Unit test of the worker's error handling: a pipeline that raises on one text."""
    worker = ArticleWorker(str(tiny_model), SCHEMA, batch_size=4)
    real_pipe = worker.nlp.pipe

    def pipe(texts, **kwargs):
        texts = list(texts)
        if any("POISON" in t for t in texts):
            raise RuntimeError("tensor shape mismatch")
        return real_pipe(texts, **kwargs)

    worker.nlp.pipe = pipe
    rows = [{**r, "source": f"in:{i}", "month": "unknown"} for i, r in enumerate(archive_records(3))]
    rows[1]["text"] += " POISON"
    out = worker.process(rows)
    assert [r["error"] for r in out] == [None, "in:1: pipeline failed (RuntimeError: tensor shape mismatch)", None]
    assert out[0]["tables"] and out[2]["tables"] and out[1]["tables"] is None


def test_clause_scores_survive_an_article_cut_into_windows(tiny_model: Path) -> None:
    """`Doc.from_docs` drops span-group attrs; the windowed inference carries the scores over."""
    import spacy

    from homs_ner.outputs.inference import pipe_articles

    nlp = spacy.load(tiny_model)
    text = "\n".join(row[0] for row in DATA)
    whole, = pipe_articles(nlp, [text], max_chars=100_000)
    windowed, = pipe_articles(nlp, [text], max_chars=120)
    group = SCHEMA.span_group
    assert len(windowed.spans[group]) >= 2 and len(windowed.spans[group].attrs["scores"]) == len(windowed.spans[group])
    rows = archive.article_tables(windowed, {"id": "a", "month": "unknown"}, SCHEMA, ("ar_m", "1"))["clauses"]
    assert rows and all(0 < r["score"] <= 1 for r in rows)
    assert {(s.start_char, s.label_) for s in whole.spans[group]} >= {(r["start"], r["type"]) for r in rows}


def test_a_store_of_another_model_is_refused_and_unfinished_commits_are_cleared(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path)
    store.claim("ar_a", "1.0")
    with pytest.raises(StoreError, match="holds results of ar_a 1.0, not ar_b 1.0"):
        store.claim("ar_b", "1.0")
    row = {"article_id": "x", "clause": 0, "type": "CEASEFIRE", "text": "t", "start": 0, "end": 1, "score": 0.5,
           "model": "ar_a", "model_version": "1.0", "month": "2016-12"}
    done = store.commit({"clauses": [row]}, ["x"], [])
    unfinished = store.commit({"clauses": [{**row, "article_id": "y"}]}, ["y"], [])
    (tmp_path / COMMITS / f"{unfinished.name}.json").unlink()  # killed before its marker
    (tmp_path / "clauses" / ".part-z.parquet.123.tmp").write_bytes(b"half")
    removed = store.remove_unfinished()
    assert sorted(p.name for p in removed) == sorted([f"part-{unfinished.name}.parquet", ".part-z.parquet.123.tmp"])
    assert store.done_ids() == {"x"} and [c.name for c in store.commits()] == [done.name]


# --- engines, kills ----------------------------------------------------------------------


def test_local_and_ray_engines_give_identical_rows(
    source: Path, tiny_model: Path, reference: dict, ray_session: None, tmp_path: Path
) -> None:
    summary = extract(source, tiny_model, tmp_path / "ray", engine="ray", workers=2, batch_size=4)
    assert (summary.articles, summary.errors, summary.processed) == (40, 0, 40)
    assert store_rows(tmp_path / "ray") == reference


def test_a_killed_ray_worker_is_restarted_and_the_run_is_complete(
    source: Path, tiny_model: Path, reference: dict, ray_session: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = tmp_path / "crashed"
    records = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines()]
    records[17]["url"] = f"crash-once:{flag}"
    crashing = write_jsonl(tmp_path / "crash.jsonl", records)
    monkeypatch.setattr(archive, "ArticleWorker", CrashOnceWorker)
    summary = extract(crashing, tiny_model, tmp_path / "store", engine="ray", workers=1, batch_size=4)
    assert flag.exists(), "the worker never met the article that kills it"
    assert int(flag.read_text()) in summary.peak_rss_mb and len(summary.peak_rss_mb) == 2, "a new actor took over"
    assert (summary.articles, summary.errors) == (40, 0)
    rows = store_rows(tmp_path / "store")
    url_column = [name for name, _ in TABLES["articles"]].index("url")
    assert [r[url_column] for r in rows["articles"]].count(f"crash-once:{flag}") == 1
    rows["articles"] = sorted((r[:url_column] + (None,) + r[url_column + 1:] for r in rows["articles"]), key=repr)
    assert rows == reference


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_a_killed_driver_resumes_to_exactly_the_rows_of_an_uninterrupted_run(
    sig: signal.Signals, source: Path, tiny_model: Path, reference: dict, tmp_path: Path
) -> None:
    out = tmp_path / "store"
    command = [sys.executable, "-m", "homs_ner", "extract-archive", str(source), "--model", str(tiny_model),
               "--out", str(out), "--batch-size", "1"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (*sys.path, os.environ.get("PYTHONPATH")) if p)}
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while len(list((out / COMMITS).glob("*.json"))) < 3 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    first.send_signal(sig)
    output, _ = first.communicate(timeout=60)
    committed = len(list((out / COMMITS).glob("*.json")))
    assert 3 <= committed < 40, f"the kill came too late to test anything ({committed} commits):\n{output}"
    if sig == signal.SIGINT:
        assert first.returncode == 130 and "run the same command again" in " ".join(output.split())
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert f"40 in = 40 articles + 0 errors ({committed} done before this run" in " ".join(second.stderr.split())
    assert store_rows(out) == reference


# --- queries -----------------------------------------------------------------------------


def test_named_queries_and_free_sql_over_a_store(source: Path, tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "store"
    extract(source, tiny_model, out, batch_size=8)
    listed = runner.invoke(app, ["query", str(out)])
    assert listed.exit_code == 0 and "evacuations" in listed.output and "guarantors" in listed.output
    evacuations = runner.invoke(app, ["query", str(out), "evacuations", "--format", "json"])
    assert evacuations.exit_code == 0, evacuations.output
    rows = json.loads(evacuations.output)
    assert rows and {r["month"] for r in rows} <= {"2014-01", "2016-12", "unknown"}
    assert all(r["destination"] == "ريف حمص الشمالي" for r in rows)
    agents = runner.invoke(app, ["query", str(out), "agents", "--format", "csv", "--limit", "2"])
    assert agents.exit_code == 0 and agents.output.splitlines()[0] == "actor,clauses,articles,types"
    assert len(agents.output.splitlines()) == 3
    assert runner.invoke(app, ["query", str(out), "guarantors"]).exit_code == 0
    by_month = runner.invoke(app, ["query", str(out), "clauses-by-month", "--format", "markdown"])
    assert by_month.output.splitlines()[:2] == ["| month | type | clauses | articles |", "|---|---|---|---|"]
    sql = runner.invoke(app, ["query", str(out), "--sql", "SELECT count(*) AS n FROM articles WHERE month = '2016-12'",
                              "--format", "csv"])
    assert sql.output.splitlines() == ["n", str(sum(1 for r in archive_records(40) if r["date"] == "2016-12"))]
    bad = runner.invoke(app, ["query", str(out), "--sql", "SELECT nope FROM articles"])
    assert bad.exit_code == 1 and "query failed: Binder Error" in bad.output and "Traceback" not in bad.output
    missing = runner.invoke(app, ["query", str(tmp_path / "none"), "agents"])
    assert missing.exit_code == 1 and "not an archive store" in " ".join(missing.output.split())


# --- the scale report --------------------------------------------------------------------


def test_the_scale_input_has_distinct_ids_and_the_report_projects_from_the_measured_runs() -> None:
    from homs_ner.cli.defaults import CORPUS_DIR
    from homs_ner.data.corpus import archive_records, load_articles
    from homs_ner.evaluate.scale import _derived, projection, to_markdown

    articles = load_articles(CORPUS_DIR)
    records = archive_records(articles, 2 * len(articles) + 1)
    assert len({r["id"] for r in records}) == len(records)
    assert [r["id"] for r in records[: len(articles)]] == [a.id for a in articles]
    assert records[len(articles)]["id"] == f"{articles[0].id}~1" and records[-1]["text"] == articles[0].text

    def run(engine: str, workers: int, seconds_per_block: float) -> dict:
        blocks = [{"at": 10 + i * seconds_per_block, "articles": 10, "words": 5000, "model_seconds": 0.9 * seconds_per_block * workers,
                   "commit_seconds": 0.01} for i in range(5)]
        raw = {"articles": 50, "errors": 0, "seconds": blocks[-1]["at"], "store_bytes": 50_000, "blocks": blocks,
               "worker_peak_rss_mb": [900.0] * workers}
        return {"engine": engine, "workers": workers, "driver_peak_rss_mb": 500.0, "load_before": 0.2, "load_after": 0.3,
                **raw, **_derived(raw, workers)}

    result = {"machine": {"cpus": 2, "python": "3.11", "platform": "linux", "omp_num_threads": None}, "model": "m",
              "articles": 50, "batch_size": 10, "runs": [run("local", 1, 4.0), run("ray", 1, 5.0), run("ray", 2, 2.5)]}
    two = result["runs"][2]
    assert two["steady_words_per_second"] == 2000 and two["overhead_ms_per_article"] == pytest.approx(50.0)
    result["projection"] = projection(result)
    assert result["projection"]["hours"] == pytest.approx(1_000_000 * 500 / 20_000 / 3600 + 10 / 3600)
    report = to_markdown(result)
    assert "## Projection: 1,000,000 articles on 10 nodes" in report and "machine was shared" not in report
    assert "2.00x the steady words/s" in report and "Not measured" not in report
    cut_short = {**result, "runs": [two]}
    cut_short["projection"] = projection(cut_short)
    assert "**Not measured** (the run was cut short): local x1, ray x1." in to_markdown(cut_short)
