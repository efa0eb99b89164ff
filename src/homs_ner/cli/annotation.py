"""Commands over annotation files: validate, convert to training data, merge single-pass
work, and inter-annotator agreement."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from homs_ner.cli._util import (
    CORPUS,
    SCHEMA,
    CorpusOpt,
    SchemaOpt,
    TokensOpt,
    app,
    console,
    fail,
    load_schema,
    print_problems,
    show_markdown,
    write_report,
)
from homs_ner.data.validation import PartialPolicy, TokenPolicy

InputsArg = Annotated[list[Path], typer.Argument(help="Doccano JSONL files, export zips or folders of them.")]


@app.command()
def validate(
    inputs: InputsArg,
    tokens: TokensOpt = TokenPolicy.expand,
    schema_path: SchemaOpt = SCHEMA,
    corpus_dir: CorpusOpt = CORPUS,
) -> None:
    """Check annotation records against the schema, the tokenizer and the corpus; list every problem."""
    from homs_ner.data.annotations import article_examples, check_inputs
    from homs_ner.data.corpus import load_articles
    from homs_ner.data.tokenizer import blank_arabic

    schema = load_schema(schema_path)
    checked = check_inputs(inputs, schema, blank_arabic(), tokens)
    articles = {a.id: a for a in load_articles(corpus_dir)}
    _, problems = article_examples(checked.examples, articles)
    checked.problems += problems
    print_problems(checked.problems)
    console.print(f"{len(checked.examples)} records: {len(checked.errors)} error(s), {len(checked.warnings)} warning(s)")
    if checked.errors:
        raise typer.Exit(1)


@app.command()
def convert(
    inputs: InputsArg,
    out: Annotated[Path, typer.Option(help="Output folder for Prodigy JSONL and spaCy DocBins.")] = Path("training/corpus"),
    annotator: Annotated[
        Optional[str], typer.Option(help="Treat all records as this one annotator's (e.g. `gold`); default: the file name.")
    ] = None,
    tokens: TokensOpt = TokenPolicy.expand,
    partial: Annotated[
        PartialPolicy,
        typer.Option(help="An article only some of whose paragraphs have records: `exclude` the others with a warning, or `error`."),
    ] = PartialPolicy.exclude,
    schema_path: SchemaOpt = SCHEMA,
    corpus_dir: CorpusOpt = CORPUS,
) -> None:
    """Validate annotations, then write Prodigy-style JSONL (paragraphs) and DocBins per split (articles).

    Earlier outputs in --out that this run does not write (a split that is gone) are removed.
    """
    from homs_ner.data.annotations import convert as run_convert
    from homs_ner.data.corpus import load_articles
    from homs_ner.data.tokenizer import blank_arabic
    from homs_ner.data.validation import ValidationFailed

    schema = load_schema(schema_path)
    articles = {a.id: a for a in load_articles(corpus_dir)}
    try:
        checked, counts = run_convert(inputs, out, schema, blank_arabic(), articles, tokens, annotator, partial)
    except ValidationFailed as err:
        print_problems(err.problems)
        fail(f"{len([p for p in err.problems if p.level == 'error'])} error(s); nothing written")
    print_problems(checked.warnings)
    for name, count in sorted(counts.items()):
        console.print(f"{out / name}: {count}")


@app.command("merge-passes")
def merge_passes(
    inputs: Annotated[list[Path], typer.Argument(help="Pulled per-annotator Doccano JSONL files of one project.")],
    out: Annotated[Path, typer.Option(help="Merged Doccano JSONL (e.g. annotations/gold/synthetic.jsonl).")],
) -> None:
    """Merge single-pass work split among annotators: per paragraph, the one annotator's record that has labels.

    Fails, naming file and line, when two annotators labelled the same paragraph.
    """
    from homs_ner.data.annotations import is_labelled, merge_single_pass
    from homs_ner.data.io import write_jsonl
    from homs_ner.data.records import RecordError

    try:
        records, problems = merge_single_pass(inputs)
    except RecordError as err:
        fail(str(err))
    print_problems(problems)
    if problems:
        fail(f"{len(problems)} error(s); nothing written")
    write_jsonl(out, records)
    labelled = sum(map(is_labelled, records))
    console.print(f"{len(records)} paragraphs ({labelled} labelled) -> {out}")


@app.command()
def agreement(
    inputs: Annotated[list[Path], typer.Argument(help="Per-annotator Doccano JSONL files, export zips or folders.")],
    out: Annotated[Path, typer.Option(help="Report path without suffix: writes .json and .md.")] = Path("reports/agreement"),
    diff: Annotated[
        Optional[Path], typer.Option(help="Also write, per annotator pair, what only one side marked (for adjudication) to this folder.")
    ] = None,
    tokens: TokensOpt = TokenPolicy.expand,
    schema_path: SchemaOpt = SCHEMA,
) -> None:
    """Inter-annotator agreement per annotator pair: entity F1 (exact/overlap), token kappa, clauses, relations."""
    from homs_ner.data.annotations import check_inputs
    from homs_ner.data.io import atomic_write_text
    from homs_ner.data.tokenizer import blank_arabic
    from homs_ner.evaluate.agreement import disagreements, pairwise, to_markdown

    schema, nlp = load_schema(schema_path), blank_arabic()
    checked = check_inputs(inputs, schema, nlp, tokens)
    if checked.errors:
        print_problems(checked.errors)
        fail("fix the annotation errors first (homs-ner validate)")
    results = pairwise(checked.examples, schema, nlp)
    if not results:
        fail("agreement needs at least two annotators in the inputs")
    if diff is not None:
        for pair in results:
            a, b = pair.split(" vs ")
            atomic_write_text(diff / f"{a}_vs_{b}.md", disagreements(checked.examples, a, b))
    report = to_markdown(results)
    write_report(out, results, report, ensure_ascii=False)
    show_markdown(report)
    console.print(f"written {out.with_suffix('.json')} and {out.with_suffix('.md')}")
