"""Measure `doccano preannotate` before and after the bulk reads: HTTP requests and seconds.

    python scripts/preannotate_benchmark.py MODEL [--paragraphs 2000] [--out reports/preannotate]
        [--workers 1 2 4] [--without-admin] [--before-ref REV]

Starts a fresh local Doccano (loopback, a temporary data folder, two web workers as
`homs-ner doccano serve` runs it), pushes the corpus paragraphs (page furniture held back),
replicated under distinct paragraph ids up to `--paragraphs`, into one project, and
pre-annotates all of them with the same model once per variant, each for an annotator
account of its own:

* `before`: `preannotate` of `--before-ref` (the last commit with two reads per example),
  loaded from git and run over a client with that code's page size (100);
* `after, N threads` for each `--workers` N (default: the command's own): the command
  line's path, reads per project, the annotator's spans in one export made by the admin,
  suggestions posted by N threads;
* with `--without-admin`, `after, no admin`: the library without an admin client (one
  span read per open example).

Each variant runs twice: the first run posts every suggestion, the second (a re-run) must
find them all and post nothing. Requests are counted by the clients' `RequestCounter`
(the annotator's and, for the export, the admin's); seconds are wall-clock time of the
`preannotate` call, model included. The model's own time on the same paragraphs is measured
apart. Writes `<out>.md` and `<out>.json`. Needs the git history (`--before-ref`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import spacy
from spacy.language import Language

from homs_ner.cli import defaults
from homs_ner.data.boilerplate import hold_back
from homs_ner.data.corpus import Paragraph, load_articles, paragraphs
from homs_ner.data.io import atomic_write_text, write_json
from homs_ner.data.schema import Schema, load_schema
from homs_ner.doccano.accounts import add_annotator
from homs_ner.doccano.client import DoccanoClient
from homs_ner.doccano.preannotate import DEFAULT_WORKERS, preannotate
from homs_ner.doccano.server import DoccanoServer
from homs_ner.doccano.sync import push
from homs_ner.report import table

BEFORE_REF = "4a2b9f8c61f3469d11e25fb5da61aee514778fcc"  # main before the bulk reads
BEFORE_PAGE_SIZE = 100  # that code's DoccanoSession default
ANNOTATOR_PASSWORD = "Homs-Bench-2014!"  # of throwaway accounts on a throwaway server
PROJECT = "preannotate-benchmark"


def replicated(paras: list[Paragraph], n: int) -> list[Paragraph]:
    """The first `n` of the paragraphs repeated, copies after the first with ids `<id>~<k>`."""
    copies = (paras[i % len(paras)] for i in range(n))
    return [p if i < len(paras) else dataclasses.replace(p, id=f"{p.id}~{i // len(paras)}") for i, p in enumerate(copies)]


def load_before(ref: str) -> types.ModuleType:
    """`homs_ner.doccano.sync` as it was at `ref`, as a module of its own.

    Registered in `sys.modules` before it runs: dataclasses look their module up there.
    """
    path = "src/homs_ner/doccano/sync.py"
    source = subprocess.run(
        ["git", "-C", str(defaults.REPO_ROOT), "show", f"{ref}:{path}"], check=True, capture_output=True, text=True
    ).stdout
    module = types.ModuleType("homs_ner_sync_before")
    module.__file__ = f"{ref[:12]}:{path}"
    sys.modules[module.__name__] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def measured(call: Callable[[], Any], *clients: DoccanoClient) -> dict[str, Any]:
    """Run `call`; its wall-clock seconds, the requests the clients sent meanwhile, and its report."""
    before = [c.requests.by_method() for c in clients]
    start = time.perf_counter()
    report = call()
    seconds = time.perf_counter() - start
    by_method: dict[str, int] = {}
    for client, counts in zip(clients, before):
        for method, count in client.requests.by_method().items():
            by_method[method] = by_method.get(method, 0) + count - counts.get(method, 0)
    return {
        "seconds": round(seconds, 2),
        "requests": sum(by_method.values()),
        "by_method": dict(sorted(by_method.items())),
        "preannotated": report.preannotated,
        "skipped": report.skipped,
        "spans": report.spans,
        "relations": report.relations,
    }


@dataclasses.dataclass(frozen=True)
class Variant:
    """One way of pre-annotating: the code at `before_ref`, or today's with or without an admin."""

    name: str
    before: bool = False
    admin: bool = True
    workers: int = DEFAULT_WORKERS


def variants(workers: list[int], without_admin: bool) -> list[Variant]:
    """`before`; `after` with each number of writing threads; `after, no admin` if asked."""
    after = [Variant(f"after, {w} thread{'s' if w > 1 else ''}", workers=w) for w in workers]
    return [Variant("before", before=True), *after, *([Variant("after, no admin", admin=False)] if without_admin else [])]


def run_variant(
    variant: Variant, username: str, url: str, admin: DoccanoClient, project: str, nlp: Language, schema: Schema,
    n: int, model_name: str, before: types.ModuleType,
) -> dict[str, Any]:  # fmt: skip
    """Pre-annotate the whole project twice for an annotator account of the variant's own.

    In a non-collaborative project each account sees only its own spans, so every variant
    starts from an untouched project; the export grows with the earlier variants' work, as
    it would with other annotators'.
    """
    add_annotator(admin, project, username, ANNOTATOR_PASSWORD)
    options = {"page_size": BEFORE_PAGE_SIZE} if variant.before else {}
    with DoccanoClient.login(url, username, ANNOTATOR_PASSWORD, **options) as client:
        if variant.before:
            call = lambda: before.preannotate(client, project, nlp, schema, model_name)  # noqa: E731
        else:
            bulk_admin = admin if variant.admin else None
            call = lambda: preannotate(client, project, nlp, schema, model_name, admin=bulk_admin, workers=variant.workers)  # noqa: E731
        first = measured(call, client, admin)
        again = measured(call, client, admin)
    if again["preannotated"] or again["skipped"] != n:
        raise RuntimeError(f"{variant.name}: the re-run posted {again['preannotated']} suggestion(s); it must post none")
    return {"variant": variant.name, "workers": None if variant.before else variant.workers, "first": first, "rerun": again}


def model_seconds(nlp: Language, texts: list[str]) -> float:
    """The model alone on the texts (the batch size `preannotate` uses)."""
    start = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=8):
        pass
    return round(time.perf_counter() - start, 2)


def per_paragraph(value: float, n: int, scale: float = 1.0) -> str:
    return f"{scale * value / n:.2f}"


def speedup(before: dict[str, Any], after: dict[str, Any], model: float) -> list[list[str]]:
    """Rows of before -> after for the first run and the re-run."""
    first_b, first_a = before["first"], after["first"]
    return [
        ["first run", f"{first_b['requests']:,} -> {first_a['requests']:,}",
         f"{first_b['seconds']} -> {first_a['seconds']} (x{first_b['seconds'] / first_a['seconds']:.2f})",
         f"{first_b['seconds'] - model:.1f} -> {first_a['seconds'] - model:.1f}"],
        ["re-run", f"{before['rerun']['requests']:,} -> {after['rerun']['requests']:,}",
         f"{before['rerun']['seconds']} -> {after['rerun']['seconds']} (x{before['rerun']['seconds'] / after['rerun']['seconds']:.1f})",
         "(no model)"],
    ]  # fmt: skip


def markdown(data: dict[str, Any]) -> str:
    """The report: one row per variant and run, the speed-up of the command's path, and how."""
    n = data["paragraphs"]
    rows = []
    for result in data["results"]:
        for run, label in (("first", "first run"), ("rerun", "re-run (all done)")):
            r = result[run]
            methods = ", ".join(f"{m} {c:,}" for m, c in r["by_method"].items())
            rows.append([result["variant"], label, f"{r['requests']:,}", per_paragraph(r["requests"], n), methods,
                         r["seconds"], per_paragraph(r["seconds"], n, 1000), r["preannotated"], r["spans"], r["relations"]])  # fmt: skip
    command = f"after, {data['default_workers']} thread" + ("s" if data["default_workers"] > 1 else "")
    by = {r["variant"]: r for r in data["results"]}
    lines = [
        "# Pre-annotation: requests and seconds, before and after the bulk reads",
        "",
        f"{n:,} paragraphs (the corpus's {data['distinct_paragraphs']:,} annotatable paragraphs, replicated under distinct ids), "
        f"model `{data['model']}`, one fresh local Doccano 1.8.4 on loopback ({data['web_workers']} web workers, SQLite), "
        f"{data['cpus']} CPUs shared with other jobs. Generated by `spacy project run preannotate-benchmark` "
        f"(`{data['command']}`).",
        "",
        *table(["variant", "run", "requests", "per paragraph", "by method", "seconds", "ms per paragraph",
                "pre-annotated", "spans", "relations"], rows),  # fmt: skip
        "",
        f"The model alone takes {data['model_seconds']} s on these {n:,} paragraphs "
        f"({per_paragraph(data['model_seconds'], n, 1000)} ms each); it is inside every first run's seconds.",
    ]
    if "before" in by and command in by:
        lines += [
            "",
            f"## Speed-up of `homs-ner doccano preannotate` (before -> {command}, its default)",
            "",
            *table(["run", "requests", "seconds", "seconds without the model"],
                   speedup(by["before"], by[command], data["model_seconds"])),  # fmt: skip
        ]
    lines += [
        "",
        "## What was measured",
        "",
        f"- `before`: `preannotate` at commit `{data['before_ref'][:12]}`, loaded from git: a comments read and a spans "
        "read per example (the spans read is skipped once the comment is found), then every suggestion posted one "
        "request at a time.",
        "- `after, N threads`: what `homs-ner doccano preannotate --workers N` does: examples and the project's "
        "pre-annotation comments read page by page (1,000 a page), the annotator's spans from one JSONL export made "
        "by the admin (its status polls counted; skipped when every example is confirmed or marked, as on a re-run), "
        "suggestions posted by N threads over keep-alive connections.",
        *(["- `after, no admin`: the library called without an admin client: one span read per example that is "
           "neither confirmed nor marked (every example on the first run, none on the re-run)."] if "after, no admin" in by else []),
        "- Doccano 1.8.4 has no bulk create for spans, relations or comments, so posting stays one request per span, "
        "per relation and per example's comment in every variant: the first run's requests are mostly these writes.",
        "- Each variant pre-annotates the same project for an account of its own (a non-collaborative project shows "
        "each account only its own spans), in the order of the table; the later exports carry the earlier variants' "
        "work, as they would carry other annotators'.",
        "- Requests: every HTTP request of the annotator's and the admin's clients during the call (retries included), "
        "counted by `DoccanoSession.requests`. Seconds: wall clock of the call, on a machine shared with other jobs.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a trained pipeline (directory)")
    parser.add_argument("--paragraphs", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("reports/preannotate"))
    parser.add_argument("--before-ref", default=BEFORE_REF)
    parser.add_argument("--workers", type=int, nargs="+", default=[DEFAULT_WORKERS],
                        help="writing threads of the `after` variants, one variant each")  # fmt: skip
    parser.add_argument("--without-admin", action="store_true", help="also measure the library without an admin client")
    parser.add_argument("--corpus", type=Path, default=defaults.REPO_ROOT / "corpus")
    args = parser.parse_args(argv)

    schema = load_schema(defaults.REPO_ROOT / "configs" / "labels.yml")
    distinct, _ = hold_back([p for a in load_articles(args.corpus) for p in paragraphs(a)])
    paras = replicated(distinct, args.paragraphs)
    nlp = spacy.load(args.model)
    before = load_before(args.before_ref)
    data: dict[str, Any] = {
        "paragraphs": len(paras),
        "distinct_paragraphs": len(distinct),
        "model": str(args.model),
        "before_ref": args.before_ref,
        "cpus": os.cpu_count(),
        "default_workers": DEFAULT_WORKERS,
        "command": " ".join(["python scripts/preannotate_benchmark.py", *(argv if argv is not None else sys.argv[1:])]),
        "model_seconds": model_seconds(nlp, [p.text for p in paras]),
        "results": [],
    }
    with tempfile.TemporaryDirectory(prefix="homs-ner-preannotate-bench-") as home:
        server = DoccanoServer(Path(home) / "doccano", venv=defaults.default_venv())
        data["web_workers"] = server.web_workers
        with server, server.admin_client() as admin:
            print(f"pushing {len(paras)} paragraphs", flush=True)
            push(admin, PROJECT, schema, "benchmark", paras)
            for i, variant in enumerate(variants(args.workers, args.without_admin)):
                print(f"{variant.name}: pre-annotating {len(paras)} paragraphs twice", flush=True)
                result = run_variant(variant, f"bench_annotator_{i}", server.url, admin, PROJECT, nlp, schema,
                                     len(paras), str(args.model), before)  # fmt: skip
                print(f"  {result['first']['requests']} requests, {result['first']['seconds']} s; "
                      f"re-run {result['rerun']['requests']} requests, {result['rerun']['seconds']} s", flush=True)  # fmt: skip
                data["results"].append(result)
    write_json(args.out.with_suffix(".json"), data)
    atomic_write_text(args.out.with_suffix(".md"), markdown(data))
    print(f"wrote {args.out.with_suffix('.md')} and .json")


if __name__ == "__main__":
    main()
