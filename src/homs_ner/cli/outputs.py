"""Commands that use a trained pipeline or the annotated corpus: predict, visualize, extract,
export as a Hugging Face dataset."""

from __future__ import annotations

from collections import Counter
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from homs_ner.cli._util import SCHEMA, CorpusDocsOpt, SchemaOpt, app, console, fail, load_schema, progress

if TYPE_CHECKING:
    from spacy.tokens import Doc

    from homs_ner.outputs.inputs import ArticleFile

ModelArg = Annotated[str, typer.Argument(help="Trained pipeline: directory or installed package name.")]


class OnBadInput(str, Enum):
    """What `predict` does with an article it cannot read."""

    skip = "skip"
    stop = "stop"


BatchOpt = Annotated[int, typer.Option(min=1, help="Articles per batch (at least 1).")]


def _read_articles(
    inputs: list[Path], out_dir: Path, on_bad_input: OnBadInput, suffixes: tuple[str, ...] = (".txt",)
) -> tuple[list[ArticleFile | Path], list[str]]:
    """Every input article read and checked, and the output folder proved writable, before a model loads.

    Returns the articles (`.spacy` inputs as their paths) and one error line per unreadable
    file; `stop` fails at once instead.
    """
    from homs_ner.outputs.inputs import InputError, article_files, check_unique_ids, check_writable, read_article

    try:
        files = article_files(inputs, suffixes)
        check_unique_ids([f for f in files if f.suffix != ".spacy"])
        check_writable(out_dir)
    except InputError as err:
        fail(str(err))
    articles: list[ArticleFile | Path] = []
    errors: list[str] = []
    for f in files:
        if f.suffix == ".spacy":
            articles.append(f)
            continue
        try:
            articles.append(read_article(f))
        except InputError as err:
            errors.append(str(err))
    for error in errors:
        console.print(f"[bold red]error:[/] {error}")
    if errors and on_bad_input is OnBadInput.stop:
        fail(f"{len(errors)} of {len(files)} input(s) unreadable; nothing done (--on-bad-input stop)")
    return articles, errors


def _report_counts(given: int, done: int, errors: list[str], what: str) -> None:
    """The closing line: every input is either a result or an error; a failure sets the exit code."""
    console.print(f"{given} input(s): {done} {what}, {len(errors)} failed")
    if errors:
        raise typer.Exit(1)


@app.command()
def predict(
    model: ModelArg,
    inputs: Annotated[list[Path], typer.Argument(help="Article .txt files (UTF-8) or folders of them.")],
    out: Annotated[Path, typer.Option(help="Output JSONL: one analysis per article.")] = Path("predictions.jsonl"),
    batch_size: BatchOpt = 4,
    on_bad_input: Annotated[
        OnBadInput, typer.Option(help="An unreadable article: `skip` it (named, exit code 1) or `stop` before loading the model.")
    ] = OnBadInput.skip,
) -> None:
    """Run a trained pipeline over articles; write entities, clauses and relations as JSONL.

    Offsets count characters of each file as read (UTF-8, line endings kept, CRLF included).
    """
    from homs_ner.data.io import write_jsonl
    from homs_ner.outputs.api import analyze_many, load

    articles, errors = _read_articles(inputs, out.parent, on_bad_input)
    nlp = load(model)
    records = []
    with progress() as bar:
        task = bar.add_task("predicting", total=len(articles))
        for article, analysis in zip(articles, analyze_many(nlp, (a.text for a in articles), batch_size)):
            records.append({"id": article.id, **analysis})
            bar.advance(task)
    write_jsonl(out, records)
    console.print(f"{len(records)} articles -> {out}")
    _report_counts(len(articles) + len(errors), len(records), errors, "analysed")


def _article_docs(
    inputs: list[Path], model: Optional[str], out_dir: Path, batch_size: int = 4
) -> tuple[list[tuple[str, Doc]], list[tuple[str, Doc]], list[str]]:
    """(id, doc) pairs of the inputs as annotated (from .spacy DocBins) and as predicted, and the errors.

    Inputs are DocBins of annotated articles (e.g. training/corpus/test.spacy) or article
    .txt files and folders; predictions are made only when a model is given.
    """
    from homs_ner.data.tokenizer import blank_arabic
    from homs_ner.outputs.api import load
    from homs_ner.outputs.articles import predict_articles, read_articles

    articles, errors = _read_articles(inputs, out_dir, OnBadInput.skip, (".txt", ".spacy"))
    nlp = load(model) if model else None
    annotated, texts = read_articles(articles, nlp.vocab if nlp else blank_arabic().vocab)
    if nlp is None:
        return annotated, [], errors
    with progress() as bar:
        task = bar.add_task(f"predicting with {model}", total=len(texts))
        return annotated, predict_articles(nlp, texts, batch_size, lambda: bar.advance(task)), errors


@app.command()
def visualize(
    inputs: Annotated[list[Path], typer.Argument(help="Annotated DocBins (.spacy) and/or article .txt files or folders.")],
    model: Annotated[Optional[str], typer.Option(help="Trained pipeline whose predictions are shown beside the gold.")] = None,
    article: Annotated[Optional[list[str]], typer.Option(help="Only these article ids (repeatable).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for one <article>.html per article.")] = Path("training/visualize"),
    png: Annotated[
        Optional[Path], typer.Option(help="Also screenshot each page with headless Chromium into this folder.")
    ] = None,
    schema_path: SchemaOpt = SCHEMA,
) -> None:
    """Self-contained right-to-left HTML per article (displaCy): entities, clauses and relations, gold beside predicted."""
    from homs_ner.data.io import atomic_write_text
    from homs_ner.outputs.visualize import render_article, screenshot

    schema = load_schema(schema_path)
    annotated, predicted, errors = _article_docs(inputs, model, out)
    columns: dict[str, list] = {}
    for name, docs in (("gold", annotated), (f"predicted ({model})", predicted)):
        for doc_id, doc in docs:
            if not article or doc_id in article:
                columns.setdefault(doc_id, []).append((name, doc))
    if not columns:
        fail("nothing to show: give annotated .spacy files, or --model with articles")
    for doc_id, cols in columns.items():
        path = out / f"{doc_id}.html"
        atomic_write_text(path, render_article(doc_id, cols, schema))
        console.print(f"written {path}")
        if png is not None:
            try:
                console.print(f"written {screenshot(path, png / f'{doc_id}.png')}")
            except (FileNotFoundError, RuntimeError) as err:
                fail(str(err))
    if errors:
        raise typer.Exit(1)


@app.command()
def extract(
    inputs: Annotated[list[Path], typer.Argument(help="Article .txt files or folders (need --model), or annotated DocBins (.spacy).")],
    model: Annotated[Optional[str], typer.Option(help="Trained pipeline; without it, .spacy inputs are read as annotated.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for <article>.json files and clauses.csv.")] = Path("training/extracted"),
    batch_size: BatchOpt = 4,
    schema_path: SchemaOpt = SCHEMA,
) -> None:
    """Agreements as structured data: every clause with its parties, places, amounts; the entity inventory.

    One JSON per article (schema in the README and `homs_ner.outputs.extraction`) and one CSV
    row per clause across all articles.
    """
    from homs_ner.data.io import atomic_write_text, write_json
    from homs_ner.outputs.extraction import clauses_csv, extract as run_extract

    schema = load_schema(schema_path)
    annotated, predicted, errors = _article_docs(inputs, model, out, batch_size)
    docs = predicted if model else annotated
    if not docs and not errors:
        fail("no articles: give .txt articles with --model, or annotated .spacy files")
    clashes = sorted(doc_id for doc_id, n in Counter(d for d, _ in docs).items() if n > 1)
    if clashes:
        fail(f"several inputs would be written as the same file: {', '.join(f'{c}.json' for c in clashes)}")
    results = [run_extract(doc, schema, doc_id) for doc_id, doc in docs]
    for result in results:
        write_json(out / f"{result['article_id']}.json", result)
    atomic_write_text(out / "clauses.csv", clauses_csv(results, schema))
    console.print(f"{len(results)} articles, {sum(len(r['clauses']) for r in results)} clauses -> {out}")
    _report_counts(len(results) + len(errors), len(results), errors, "extracted")


@app.command("export-dataset")
def export_dataset(
    corpus: CorpusDocsOpt = Path("training/corpus"),
    out: Annotated[Path, typer.Option(help="Folder for the saved DatasetDict (datasets.load_from_disk).")] = Path(
        "training/dataset"
    ),
    schema_path: SchemaOpt = SCHEMA,
) -> None:
    """The annotated corpus as a Hugging Face DatasetDict (train/dev/test by article), saved to disk."""
    from spacy.tokens import DocBin

    from homs_ner.data.tokenizer import blank_arabic
    from homs_ner.outputs.dataset import build

    schema, vocab = load_schema(schema_path), blank_arabic().vocab
    found = {f.stem: f for f in sorted(corpus.glob("*.spacy"))}
    if not found:
        fail(f"no .spacy files in {corpus}; run `spacy project run convert` first")
    splits = {name: list(DocBin().from_disk(path).get_docs(vocab)) for name, path in found.items()}
    dataset = build(splits, schema)
    dataset.save_to_disk(str(out))
    console.print(dataset)
    console.print(f"saved to {out}; read it with datasets.load_from_disk({str(out)!r})")


class Engine(str, Enum):
    """Where `extract-archive` runs the pipeline."""

    local = "local"
    ray = "ray"


@app.command("extract-archive")
def extract_archive(
    source: Annotated[
        Path, typer.Argument(help="A folder of .txt articles, a JSONL file (id, text; optional date, outlet, url) or Parquet file(s) with those columns.")
    ],
    model: Annotated[str, typer.Option(help="Trained pipeline directory (on a Ray cluster: a path every node can read).")],
    out: Annotated[Path, typer.Option(help="Store folder: Parquet tables articles, entities, clauses, relations, errors.")],
    engine: Annotated[Engine, typer.Option(help="`local`: this process, no cluster; `ray`: Ray Data actors.")] = Engine.local,
    address: Annotated[
        Optional[str], typer.Option(help="With --engine ray: an existing cluster (ray://HOST:10001); default: start Ray on this machine.")
    ] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="With --engine ray: actors, one CPU and one loaded pipeline each (default: this machine's CPUs).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Articles per batch: a batch is one commit to the store.")] = 32,
    schema_path: SchemaOpt = SCHEMA,
) -> None:
    """Extract entities, clauses and relations from a whole archive into a Parquet store; resumable.

    Run it again after a kill (Ctrl-C, a dead worker or driver): finished batches are kept,
    the rest is done, no article twice. Unreadable, empty or failing articles go to the
    `errors` table; the closing line checks articles in = rows out + errors.
    """
    import os

    from homs_ner.outputs.archive import plan_archive, run_archive
    from homs_ner.outputs.inputs import InputError
    from homs_ner.outputs.store import StoreError

    if engine is Engine.local and (address or (workers or 1) > 1):
        fail("--address and --workers need --engine ray (the local engine is this one process)")
    if not Path(model).is_dir():
        fail(f"pipeline {model}: not found")
    schema = load_schema(schema_path)
    try:
        plan = plan_archive(source, model, out)
    except (InputError, StoreError) as err:
        fail(str(err))
    with progress(rate=True) as bar:
        task = bar.add_task("extracting", total=len(plan.records), completed=len(plan.records) - len(plan.pending), rate="")

        def on_block(n: int) -> None:
            bar.advance(task, n)
            bar.update(task, rate=f"{bar.tasks[task].speed or 0:.1f} articles/s")

        try:
            summary = run_archive(
                plan, model, schema, engine=engine.value, address=address, batch_size=batch_size, on_block=on_block,
                workers=workers or (1 if engine is Engine.local else os.cpu_count() or 1),
            )
        except KeyboardInterrupt:
            console.print(f"[yellow]interrupted:[/] finished batches are in {out}; run the same command again to do the rest")
            raise typer.Exit(130) from None
    rate = (f"; {summary.words:,} words in {summary.seconds:.1f} s, {summary.blocks[0].at:.1f} s of it "
            "until the first batch (start-up)" if summary.blocks else "")
    console.print(
        f"{summary.given} in = {summary.articles} articles + {summary.errors} errors "
        f"({summary.done_before} done before this run, {summary.processed} now){rate} -> {out}"
    )
    if not summary.complete:
        fail(f"{summary.given - summary.articles - summary.errors} article(s) neither stored nor in errors")


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    markdown = "markdown"


@app.command()
def query(
    store: Annotated[Path, typer.Argument(help="Store folder written by extract-archive.")],
    name: Annotated[Optional[str], typer.Argument(help="A named query (leave out to list them).")] = None,
    sql: Annotated[Optional[str], typer.Option(help="Free SQL over the views articles, entities, clauses, relations, errors.")] = None,
    output: Annotated[OutputFormat, typer.Option("--format", help="table, csv, json or markdown (on stdout).")] = OutputFormat.table,
    limit: Annotated[Optional[int], typer.Option(min=1, help="At most this many rows.")] = None,
) -> None:
    """Analysts' questions over an archive store with DuckDB: a named query, or --sql."""
    from homs_ner.outputs.queries import QUERIES, run_query
    from homs_ner.outputs.store import ArchiveStore

    if name and sql:
        fail("give a query name or --sql, not both")
    if not name and not sql:
        for key, q in QUERIES.items():
            typer.echo(f"{key:<18} {q.description}")
        return
    if name and name not in QUERIES:
        fail(f"no query named {name!r}; named queries: {', '.join(QUERIES)}")
    if not ArchiveStore(store).exists():
        fail(f"{store}: not an archive store (no _store.json); run extract-archive first")
    import duckdb

    try:
        columns, rows = run_query(store, QUERIES[name].sql if name else sql, limit)
    except duckdb.Error as err:
        fail(f"query failed: {str(err).splitlines()[0]}")
    _print_rows(columns, rows, output)


def _print_rows(columns: list[str], rows: list[tuple], output: OutputFormat) -> None:
    """Query results on stdout: a rich table, CSV, a JSON list of objects or a Markdown table."""
    import csv
    import json
    import sys

    if output is OutputFormat.markdown:
        from homs_ner.report import table

        cells = (("" if v is None else str(v).replace("|", "\\|").replace("\n", " ") for v in row) for row in rows)
        typer.echo("\n".join(table(columns, cells)))
    elif output is OutputFormat.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    elif output is OutputFormat.json:
        typer.echo(json.dumps([dict(zip(columns, row)) for row in rows], ensure_ascii=False, indent=1, default=str))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(*columns, caption=f"{len(rows)} row(s)")
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        Console().print(table)
