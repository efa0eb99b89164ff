"""`homs-ner doccano ...`: run the local Doccano, push the schema and paragraphs, pull
annotations, enter annotators' work and a model's suggestions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from homs_ner.cli import defaults
from homs_ner.cli._util import (
    CORPUS,
    SCHEMA,
    CorpusOpt,
    PasswordOpt,
    ProjectOpt,
    SchemaOpt,
    TokensOpt,
    UrlOpt,
    UserOpt,
    app,
    console,
    fail,
    load_pipeline,
    load_schema,
    print_problems,
    progress,
)
from homs_ner.data.validation import TokenPolicy

if TYPE_CHECKING:
    from homs_ner.doccano.client import DoccanoClient

doccano_app = typer.Typer(help="Run a local Doccano server; push the schema and articles; pull annotations.", no_args_is_help=True)
app.add_typer(doccano_app, name="doccano")

UserPasswordOpt = Annotated[
    Optional[str], typer.Option(envvar="DOCCANO_ANNOTATOR_PASSWORD", help="That account's password (created if missing).")
]
NO_USER_PASSWORD = "give the annotator's password with --user-password or DOCCANO_ANNOTATOR_PASSWORD"


def _client(url: str, username: str, password: str | None) -> DoccanoClient:
    from homs_ner.doccano.client import DoccanoClient
    from homs_ner.doccano.server_env import DoccanoServerError, default_admin_password

    try:
        return DoccanoClient.login(url, username, password or default_admin_password(defaults.DOCCANO_HOME))
    except DoccanoServerError as err:
        fail(str(err))


def _member_client(url: str, username: str, password: str | None, project: str, as_user: str, user_password: str) -> DoccanoClient:
    from homs_ner.doccano.sync import member_client

    with _client(url, username, password) as admin:
        return member_client(admin, project, as_user, user_password)


@doccano_app.command("install")
def doccano_install(
    venv: Annotated[Optional[Path], typer.Option(help="Server virtual environment (default: .doccano/venv).")] = None,
) -> None:
    """Create the Doccano 1.8.4 server's own virtual environment (it cannot share spaCy's)."""
    from homs_ner.doccano.server_env import DoccanoServerError, install_server_venv

    target = venv or defaults.default_venv()
    try:
        install_server_venv(target)
    except DoccanoServerError as err:
        fail(str(err))
    console.print(f"Doccano server environment ready: {target}")


@doccano_app.command("serve")
def doccano_serve(
    home: Annotated[Path, typer.Option(help="Data folder (database, media, logs); kept between runs.")] = defaults.DOCCANO_HOME,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8000,
    password: PasswordOpt = None,
    venv: Annotated[Optional[Path], typer.Option(help="Server virtual environment (default: .doccano/venv).")] = None,
) -> None:
    """Run Doccano (web UI, API and export worker) on 127.0.0.1 until Ctrl-C; prints the URL."""
    from homs_ner.doccano.serve import serve
    from homs_ner.doccano.server_env import DoccanoServerError

    try:
        serve(home=home, port=port, venv=venv or defaults.default_venv(), admin_password=password)
    except DoccanoServerError as err:
        fail(str(err))


NEW_PASSWORD_ENV = "DOCCANO_ANNOTATOR_PASSWORD"
AnnotatorArg = Annotated[str, typer.Argument(help="The annotator's user name.")]


@doccano_app.command("add-annotator")
def doccano_add_annotator(
    name: AnnotatorArg,
    project: ProjectOpt = "homs-ner",
    url: UrlOpt = "http://127.0.0.1:8000",
    username: UserOpt = "admin",
    password: PasswordOpt = None,
) -> None:
    """Create an annotator's account (if missing) and make it an annotator of the project.

    The new account's password is read from $DOCCANO_ANNOTATOR_PASSWORD, else asked for
    twice without echo; it is never printed or stored. An existing account keeps its password.
    """
    from homs_ner.doccano.accounts import add_annotator
    from homs_ner.doccano.types import DoccanoError

    secret = os.environ.get(NEW_PASSWORD_ENV) or typer.prompt(
        f"Password for {name}", hide_input=True, confirmation_prompt=True, err=True
    )
    try:
        with _client(url, username, password) as admin:
            report = add_annotator(admin, project, name, secret)
    except DoccanoError as err:
        fail(str(err))
    account = "account created" if report.account_created else "existing account (password unchanged)"
    console.print(f"{name}: {account}, annotator of {project!r}. Log in at {url}/projects/{report.project_id}")


@doccano_app.command("remove-annotator")
def doccano_remove_annotator(
    name: AnnotatorArg,
    project: ProjectOpt = "homs-ner",
    url: UrlOpt = "http://127.0.0.1:8000",
    username: UserOpt = "admin",
    password: PasswordOpt = None,
) -> None:
    """Take an annotator out of the project. Pull first: exports list project members only."""
    from homs_ner.doccano.accounts import remove_annotator
    from homs_ner.doccano.types import DoccanoError

    try:
        with _client(url, username, password) as admin:
            removed = remove_annotator(admin, project, name)
    except DoccanoError as err:
        fail(str(err))
    if not removed:
        fail(f"{name} is not a member of {project!r}")
    console.print(
        f"{name} removed from {project!r}; the account and its annotations stay in Doccano's database "
        "(re-add it with add-annotator to export them again)"
    )


@doccano_app.command("push")
def doccano_push(
    project: ProjectOpt = "homs-ner",
    url: UrlOpt = "http://127.0.0.1:8000",
    username: UserOpt = "admin",
    password: PasswordOpt = None,
    guidelines: Annotated[
        Path, typer.Option(help="Guidelines pushed as the project guideline; must exist and not be empty.")
    ] = defaults.REPO_ROOT / "annotations" / "GUIDELINES.md",
    article: Annotated[Optional[list[str]], typer.Option(help="Only these article ids (repeatable).")] = None,
    include_boilerplate: Annotated[
        bool, typer.Option("--include-boilerplate", help="Also push page furniture (links, credits, bylines, bare headings).")
    ] = False,
    schema_path: SchemaOpt = SCHEMA,
    corpus_dir: CorpusOpt = CORPUS,
) -> None:
    """Create or update the project (label types, colours, keys, guideline) and upload new paragraphs.

    Paragraphs that are page furniture (homs_ner.data.boilerplate) are held back unless
    --include-boilerplate; the guideline is pushed unwrapped, Arabic sections right-to-left.
    """
    from homs_ner.data.boilerplate import hold_back
    from homs_ner.data.corpus import load_articles, paragraphs
    from homs_ner.doccano.guideline import render_for_doccano
    from homs_ner.doccano.sync import push
    from homs_ner.doccano.types import DoccanoError

    schema = load_schema(schema_path)
    articles = [a for a in load_articles(corpus_dir) if not article or a.id in article]
    paras = [p for a in articles for p in paragraphs(a)]
    held: list = []
    if not include_boilerplate:
        paras, held = hold_back(paras)
    guideline = render_for_doccano(_guideline(guidelines))
    try:
        client = _client(url, username, password)
        with progress() as bar:
            task = bar.add_task("uploading paragraphs", total=None)
            report = push(client, project, schema, guideline, paras, lambda d, t: bar.update(task, completed=d, total=t))
    except DoccanoError as err:
        fail(str(err))
    state = "created" if report.created_project else "updated"
    if report.duplicates_removed:
        console.print(f"[yellow]removed {report.duplicates_removed} duplicate example(s) (a paragraph uploaded twice)[/]")
    console.print(
        f"project {project!r} (id {report.project_id}) {state}: {report.label_types_created} label types created, "
        f"{report.label_types_updated} updated; {report.examples_created} paragraphs uploaded, "
        f"{report.examples_existing} already there; {len(held)} boilerplate paragraph(s) held back. "
        f"Open {url}/projects/{report.project_id}"
    )


def _guideline(path: Path) -> str:
    """The guideline text; a missing or empty file fails before anything is sent.

    Read as empty, a mistyped or relative path (push run outside the repository) would
    wipe the project's guideline in Doccano.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        fail(f"guideline {path}: cannot read ({getattr(err, 'strerror', None) or err}); give --guidelines")
    if not text.strip():
        fail(f"guideline {path} is empty; it would wipe the project's guideline")
    return text


@doccano_app.command("pull")
def doccano_pull(
    project: ProjectOpt = "homs-ner",
    out: Annotated[Optional[Path], typer.Option(help="Folder for raw exports (default annotations/raw/<project>).")] = None,
    url: UrlOpt = "http://127.0.0.1:8000",
    username: UserOpt = "admin",
    password: PasswordOpt = None,
    tokens: TokensOpt = TokenPolicy.expand,
    schema_path: SchemaOpt = SCHEMA,
) -> None:
    """Export every annotator's spans and relations, keep the raw zip and per-annotator JSONL, validate them."""
    from homs_ner.data.annotations import check_inputs
    from homs_ner.data.tokenizer import blank_arabic
    from homs_ner.doccano.sync import pull
    from homs_ner.doccano.types import DoccanoError

    target = out or Path("annotations/raw") / project
    try:
        with console.status("exporting from Doccano"):
            written = pull(_client(url, username, password), project, target)
    except DoccanoError as err:
        fail(str(err))
    for annotator, path in written.items():
        console.print(f"{annotator}: {path}")
    checked = check_inputs(list(written.values()), load_schema(schema_path), blank_arabic(), tokens)
    print_problems(checked.problems)
    console.print(f"{len(checked.examples)} records pulled: {len(checked.errors)} error(s), {len(checked.warnings)} warning(s)")
    if checked.errors:
        raise typer.Exit(1)


@doccano_app.command("annotate")
def doccano_annotate(
    files: Annotated[list[Path], typer.Argument(help="Text-anchored annotation files (see homs_ner.doccano.anchored).")],
    as_user: Annotated[str, typer.Option("--as", help="The annotator account the work belongs to.")],
    user_password: UserPasswordOpt = None,
    project: ProjectOpt = "homs-ner",
    url: UrlOpt = "http://127.0.0.1:8000",
    username: UserOpt = "admin",
    password: PasswordOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only resolve and validate the files.")] = False,
    schema_path: SchemaOpt = SCHEMA,
    corpus_dir: CorpusOpt = CORPUS,
) -> None:
    """Enter an annotator's text-anchored work into Doccano as that annotator's spans and relations."""
    from homs_ner.data.corpus import load_articles, paragraphs
    from homs_ner.data.tokenizer import blank_arabic
    from homs_ner.doccano.anchored import read_checked
    from homs_ner.doccano.sync import annotate
    from homs_ner.doccano.types import DoccanoError

    paras = {p.id: p for a in load_articles(corpus_dir) for p in paragraphs(a)}
    examples, problems = read_checked(files, paras, load_schema(schema_path), blank_arabic())
    print_problems(problems)
    errors = [p for p in problems if p.level == "error"]
    console.print(f"{len(examples)} paragraphs: {len(errors)} error(s)")
    if errors:
        raise typer.Exit(1)
    if dry_run:
        return
    if not user_password:
        fail(NO_USER_PASSWORD)
    try:
        with _member_client(url, username, password, project, as_user, user_password) as client, progress() as bar:
            task = bar.add_task(f"annotating as {as_user}", total=len(examples))
            report = annotate(client, project, load_schema(schema_path), examples, lambda d, t: bar.update(task, completed=d))
    except DoccanoError as err:
        fail(str(err))
    console.print(f"{report.annotated} paragraphs annotated as {as_user}; {report.skipped} already had their spans")


@doccano_app.command("preannotate")
def doccano_preannotate(
    model: Annotated[str, typer.Argument(help="Trained pipeline: directory or installed package name.")],
    for_user: Annotated[str, typer.Option("--for", help="The annotator who will correct the suggestions.")],
    user_password: UserPasswordOpt = None,
    article: Annotated[Optional[list[str]], typer.Option(help="Only these article ids (repeatable); default: all.")] = None,
    ledger: Annotated[Path, typer.Option(help="Folder where the suggestions are also kept as Doccano JSONL.")] = Path(
        "annotations/preannotations"
    ),
    workers: Annotated[int, typer.Option(min=1, max=16, help="Threads posting suggestions to Doccano at once.")] = 4,
    project: ProjectOpt = "homs-ner",
    url: UrlOpt = "http://127.0.0.1:8000",
    username: UserOpt = "admin",
    password: PasswordOpt = None,
    schema_path: SchemaOpt = SCHEMA,
    corpus_dir: CorpusOpt = CORPUS,
) -> None:
    """Put a model's entities, clauses and relations into an annotator's view, for correction.

    Suggestions carry prob > 0 (the model's score; spans drawn by hand have 0.0), each
    example gets a comment naming the model and stays unconfirmed. Examples the annotator
    already worked on (spans, or confirmed) are skipped, never overwritten; running it
    again adds nothing twice. What exists is read per project (examples and comments page
    by page, the annotator's spans in one export as the admin); suggestions are posted by
    --workers threads.
    """
    from datetime import datetime, timezone

    from homs_ner.data.corpus import load_articles, paragraphs
    from homs_ner.data.io import write_jsonl
    from homs_ner.doccano.preannotate import preannotate
    from homs_ner.doccano.sync import member_client
    from homs_ner.doccano.types import DoccanoError

    if not user_password:
        fail(NO_USER_PASSWORD)
    schema = load_schema(schema_path)
    ids = None
    if article:
        known = {a.id: a for a in load_articles(corpus_dir)}
        unknown = sorted(set(article) - set(known))
        if unknown:
            fail(f"unknown article id(s): {', '.join(unknown)}")
        ids = [p.id for a in article for p in paragraphs(known[a])]
    with console.status(f"loading {model}"):
        nlp = load_pipeline(model)
    try:
        with _client(url, username, password) as admin, member_client(admin, project, for_user, user_password) as client:
            with progress() as bar:
                task = bar.add_task(f"pre-annotating for {for_user}", total=None)
                report = preannotate(client, project, nlp, schema, str(model), ids, admin=admin, workers=workers,
                                     progress=lambda d, t: bar.update(task, completed=d, total=t))
    except DoccanoError as err:
        fail(str(err))
    if report.suggestions:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        kept = ledger / project / f"{for_user}-{stamp}.jsonl"
        write_jsonl(kept, report.suggestions)
        console.print(f"suggestions kept in {kept}")
    console.print(
        f"{report.preannotated} paragraphs pre-annotated for {for_user} ({report.spans} spans, "
        f"{report.relations} relations); {report.skipped} skipped (already worked on or pre-annotated)"
    )
