"""What every command shares: the typer app, the console, option types with the
repository's defaults, failure and problem printing, and report writing.

Only typer, rich and light homs_ner modules are imported here: `homs-ner --help` must not
import spaCy, torch, transformers or datasets (each command imports what it needs).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, Optional

import typer
from rich.console import Console

from homs_ner.cli import defaults
from homs_ner.data.validation import TokenPolicy

if TYPE_CHECKING:
    from rich.progress import Progress
    from spacy.language import Language
    from spacy.tokens import Doc
    from spacy.vocab import Vocab

    from homs_ner.data.schema import Schema
    from homs_ner.data.validation import Problem

console = Console(stderr=True)
app = typer.Typer(
    help="Annotate and extract actors, places, quantities, dates, agreement clauses and relations "
    "in Arabic news about the Homs sieges and agreements.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

SchemaOpt = Annotated[Path, typer.Option("--schema", help="Label schema file (the single source of truth).")]
CorpusOpt = Annotated[Path, typer.Option("--corpus", help="Corpus folder with articles.jsonl and articles/.")]
CorpusDocsOpt = Annotated[Path, typer.Option(help="Folder with train/dev/test.spacy from `convert`.")]
TokensOpt = Annotated[
    TokenPolicy,
    typer.Option("--tokens", help="Spans that cut a token: `expand` to whole tokens with a warning, or `reject` as errors."),
]
UrlOpt = Annotated[str, typer.Option("--url", envvar="DOCCANO_URL", help="Doccano server URL.")]
UserOpt = Annotated[str, typer.Option("--username", envvar="DOCCANO_USERNAME", help="Doccano admin user.")]
PasswordOpt = Annotated[
    Optional[str],
    typer.Option(
        "--password", envvar="DOCCANO_ADMIN_PASSWORD",
        help="Doccano admin password (default: the one `serve` stored in .doccano/data/admin_password).",
    ),
]
ProjectOpt = Annotated[str, typer.Option("--project", help="Doccano project name.")]
SCHEMA = defaults.SCHEMA_PATH
CORPUS = defaults.CORPUS_DIR


def fail(message: str) -> NoReturn:
    """Print the error and exit with status 1."""
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def print_problems(problems: list[Problem], limit: int = 200) -> None:
    """A table of validation findings (the first `limit` of them)."""
    from rich.table import Table

    if not problems:
        return
    table = Table("level", "where", "reason", show_lines=False, title=f"{len(problems)} finding(s)")
    for p in problems[:limit]:
        colour = "red" if p.level == "error" else "yellow"
        table.add_row(f"[{colour}]{p.level}[/]", str(p.origin), p.reason)
    console.print(table)
    if len(problems) > limit:
        console.print(f"... and {len(problems) - limit} more")


def progress(rate: bool = False) -> Progress:
    """A progress bar; with `rate`, also the task's `rate` field (e.g. "12.3 articles/s") that the caller updates."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    rate_column = [TextColumn("{task.fields[rate]}")] if rate else []
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), *rate_column, TimeElapsedColumn(),
        console=console,
    )


def load_schema(path: Path) -> Schema:
    from homs_ner.data.schema import load_schema as load

    return load(path)


def load_pipeline(path: str | Path) -> Language:
    """`spacy.load`, or a one-line failure naming the folder (missing, or not a pipeline).

    An installed pipeline package's name is accepted too."""
    import spacy

    if not Path(path).exists() and not spacy.util.is_package(str(path)):
        fail(f"pipeline {path}: not found")
    try:
        return spacy.load(path)
    except (OSError, ValueError, KeyError) as err:
        fail(f"pipeline {path}: cannot be loaded ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})")


def read_docbin(path: Path, vocab: Vocab) -> list[Doc]:
    """The docs of a spaCy DocBin file, or a one-line failure naming it."""
    import zlib

    from spacy.tokens import DocBin

    if not path.is_file():
        fail(f"{path}: no such DocBin file")
    try:
        return list(DocBin().from_disk(path).get_docs(vocab))
    except (OSError, ValueError, KeyError, zlib.error) as err:
        fail(f"{path}: not a spaCy DocBin ({type(err).__name__})")


def write_report(out: Path, data: object, markdown: str, *, ensure_ascii: bool = True) -> None:
    """`out`.json (the data) and `out`.md (the readable report), each written atomically."""
    from homs_ner.data.io import atomic_write_text, write_json

    write_json(out.with_suffix(".json"), data, ensure_ascii=ensure_ascii)
    atomic_write_text(out.with_suffix(".md"), markdown)


def show_markdown(markdown: str) -> None:
    """Render a report on stdout."""
    from rich.markdown import Markdown

    Console().print(Markdown(markdown))
