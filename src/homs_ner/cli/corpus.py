"""`homs-ner corpus ...`: the articles, the paragraphs annotators label, corpus checks and statistics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from homs_ner.cli._util import (
    CORPUS,
    SCHEMA,
    CorpusOpt,
    SchemaOpt,
    app,
    console,
    fail,
    load_schema,
    print_problems,
    show_markdown,
    write_report,
)

corpus_app = typer.Typer(help="Articles, paragraphs and corpus checks.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")


@corpus_app.command("paragraphs")
def corpus_paragraphs(
    out: Annotated[Path, typer.Option(help="Where to write the paragraphs (Doccano upload JSONL).")] = Path(
        "training/doccano/paragraphs.jsonl"
    ),
    corpus_dir: CorpusOpt = CORPUS,
) -> None:
    """Cut every article into the paragraphs annotators label, with meta mapping back to the article."""
    from homs_ner.data.corpus import load_articles, write_paragraphs

    articles = load_articles(corpus_dir)
    n = write_paragraphs(articles, out)
    console.print(f"{n} paragraphs from {len(articles)} articles -> {out}")


@corpus_app.command("archive-jsonl")
def corpus_archive_jsonl(
    out: Annotated[Path, typer.Option(help="JSONL for extract-archive: id, text, date, outlet per article.")] = Path(
        "training/archive/corpus.jsonl"
    ),
    corpus_dir: CorpusOpt = CORPUS,
) -> None:
    """The corpus as an archive to run extract-archive on (the README's queries run on it)."""
    from homs_ner.data.corpus import archive_records, load_articles
    from homs_ner.data.io import write_jsonl

    n = write_jsonl(out, archive_records(load_articles(corpus_dir)))
    console.print(f"{n} articles -> {out}")


@corpus_app.command("check-overlap")
def corpus_check_overlap(
    n: Annotated[int, typer.Option(help="Length of the token sequences compared.")] = 8,
    corpus_dir: CorpusOpt = CORPUS,
) -> None:
    """Fail if any synthetic article shares an N-token sequence with a seed article (no paraphrases)."""
    from homs_ner.data.corpus import load_articles, seed_overlaps
    from homs_ner.data.tokenizer import blank_arabic

    nlp = blank_arabic()
    articles = load_articles(corpus_dir)
    found = seed_overlaps(articles, lambda text: [t.text for t in nlp.make_doc(text) if not t.is_space], n)
    n_synthetic = sum(a.source == "synthetic" for a in articles)
    for art, hits in found.items():
        for seed_id, gram in hits[:5]:
            console.print(f"{art}: shares with seed {seed_id}: {' '.join(gram)}")
    if found:
        fail(f"{len(found)} synthetic article(s) share {n}-token sequences with seed articles")
    console.print(f"OK: {n_synthetic} synthetic articles share no {n}-token sequence with any seed article")


@corpus_app.command("stats")
def corpus_stats_cmd(
    gold: Annotated[list[Path], typer.Argument(help="Gold annotations (Doccano JSONL files or folders).")],
    out: Annotated[Path, typer.Option(help="Report path without suffix: writes .json and .md.")] = Path("reports/corpus_stats"),
    schema_path: SchemaOpt = SCHEMA,
    corpus_dir: CorpusOpt = CORPUS,
) -> None:
    """Articles, words, entities per label, clauses per type, relations per type; per source and split."""
    from homs_ner.data.annotations import check_inputs
    from homs_ner.data.corpus import load_articles
    from homs_ner.data.stats import corpus_stats, to_markdown
    from homs_ner.data.tokenizer import blank_arabic

    schema = load_schema(schema_path)
    checked = check_inputs(gold, schema, blank_arabic(), annotator="gold")
    if checked.errors:
        print_problems(checked.errors)
        fail("the annotations do not validate")
    stats = corpus_stats(load_articles(corpus_dir), checked.examples, schema)
    report = to_markdown(stats, schema)
    write_report(out, stats, report, ensure_ascii=False)
    show_markdown(report)
