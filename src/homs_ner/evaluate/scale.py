"""Measured scale of `extract-archive`: the local engine against Ray Data with 1 and 2 workers
on the same replicated corpus, and a projection to a million articles from the measurements.

Each engine runs in a fresh process (`benchmark.run_module`) on its own empty store, so the
driver's peak memory and Ray's start-up belong to that run; the workers report their own
peak memory. Figures per run:

- start-up: seconds until the first batch is committed (Ray, actors, pipeline loading);
- words/s overall (start-up included) and steady (from the first commit to the last);
- overhead per article: worker-slot seconds not spent inside the pipeline (scheduling,
  serialisation, waiting) over the steady part, and the driver's commit time per article.
  Worker seconds are wall-clock inside the pipeline and workers run up to a batch ahead of
  the commits that time the run, so the overhead is accurate to about a batch per worker.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from collections.abc import Iterator
from pathlib import Path

from homs_ner.data.corpus import archive_records, load_articles
from homs_ner.data.io import write_jsonl
from homs_ner.evaluate.benchmark import run_module
from homs_ner.report import table

# The 2-worker run first: the projection needs it, and a measurement cut short keeps it.
ENGINES = (("ray", 2), ("local", 1), ("ray", 1))
RUN_SCRIPT = r"""
import json, sys
from pathlib import Path
from homs_ner.data.schema import load_schema
from homs_ner.outputs.archive import plan_archive, run_archive
source, model, out, schema, engine, workers, batch = sys.argv[1:8]
plan = plan_archive(Path(source), model, Path(out))
s = run_archive(plan, model, load_schema(Path(schema)), engine=engine, workers=int(workers), batch_size=int(batch))
store_bytes = sum(p.stat().st_size for p in Path(out).rglob("*.parquet"))
print(json.dumps({"articles": s.articles, "errors": s.errors, "seconds": s.seconds, "store_bytes": store_bytes,
                  "blocks": [b.__dict__ for b in s.blocks], "worker_peak_rss_mb": sorted(s.peak_rss_mb.values())}))
"""


def _derived(run: dict, workers: int) -> dict:
    """The figures of one run from its blocks (see the module doc)."""
    blocks = run["blocks"]
    first, rest = blocks[0], blocks[1:]
    steady_seconds = blocks[-1]["at"] - first["at"]
    steady_articles = sum(b["articles"] for b in rest)
    words = sum(b["words"] for b in blocks)
    slot_seconds = steady_seconds * workers - sum(b["model_seconds"] for b in rest)
    return {
        "words": words,
        "startup_seconds": first["at"],
        "words_per_second": words / run["seconds"],
        "steady_words_per_second": sum(b["words"] for b in rest) / steady_seconds if steady_seconds > 0 else None,
        "overhead_ms_per_article": 1000 * slot_seconds / steady_articles if steady_articles else None,
        "commit_ms_per_article": 1000 * sum(b["commit_seconds"] for b in blocks) / max(run["articles"], 1),
        "model_ms_per_article": 1000 * sum(b["model_seconds"] for b in blocks) / max(run["articles"], 1),
    }


def measure(model: str, corpus_dir: Path, schema: Path, n: int, batch_size: int) -> Iterator[dict]:
    """The result so far after each engine of `ENGINES` ran on the same `n` replicated articles.

    Yielded after every run, so that a report can be written as soon as each is measured:
    an hour-long measurement cut short keeps what it measured.
    """
    records = archive_records(load_articles(corpus_dir), n)
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                          "omp_num_threads": os.environ.get("OMP_NUM_THREADS")},
              "model": model, "articles": n, "batch_size": batch_size, "runs": []}
    with tempfile.TemporaryDirectory(prefix="homs-ner-scale-") as tmp:
        source, script = Path(tmp) / "archive.jsonl", Path(tmp) / "run.py"
        write_jsonl(source, records)
        script.write_text(RUN_SCRIPT, encoding="utf-8")
        for engine, workers in ENGINES:
            load_before = os.getloadavg()[0]
            out = Path(tmp) / f"store-{engine}-{workers}"
            stdout, wall, driver_peak = run_module(
                str(script), [str(source), model, str(out), str(schema), engine, str(workers), str(batch_size)]
            )
            run = json.loads(stdout.strip().splitlines()[-1])
            result["runs"].append({"engine": engine, "workers": workers, "process_seconds": wall,
                                   "driver_peak_rss_mb": driver_peak, "load_before": load_before,
                                   "load_after": os.getloadavg()[0], **run, **_derived(run, workers)})
            yield result


def projection(result: dict, articles: int = 1_000_000, nodes: int = 10, node_hour_usd: float = 0.10) -> dict | None:
    """A million articles on `nodes` nodes like this one (2 CPUs, 2 workers each), from the 2-worker run.

    Assumes throughput adds up over nodes (no shared state but the driver, checked against
    its measured commit time) and the same article length; the price per node-hour is an
    assumption, not a measurement.
    """
    two = _run(result, "ray", 2)
    if two is None or not two["steady_words_per_second"]:
        return None
    words_per_article = two["words"] / two["articles"]
    cluster_wps = nodes * two["steady_words_per_second"]
    inference_hours = articles * words_per_article / cluster_wps / 3600
    driver_articles_per_second = 1000 / (two["commit_ms_per_article"] or 1e-9)
    return {
        "articles": articles, "nodes": nodes, "words_per_article": words_per_article, "cluster_words_per_second": cluster_wps,
        "cluster_articles_per_second": cluster_wps / words_per_article, "hours": inference_hours + two["startup_seconds"] / 3600,
        "node_hours": nodes * inference_hours, "cost_usd": nodes * inference_hours * node_hour_usd, "node_hour_usd": node_hour_usd,
        "driver_articles_per_second": driver_articles_per_second,
        "store_gb": two["store_bytes"] / two["articles"] * articles / 1e9,
        "worker_peak_rss_mb": max(two["worker_peak_rss_mb"]),
    }


def _run(result: dict, engine: str, workers: int) -> dict | None:
    return next((r for r in result["runs"] if (r["engine"], r["workers"]) == (engine, workers)), None)


def _load(run: dict) -> float:
    """The run's load average, as the mean of the 1-minute figures before and after it."""
    return (run["load_before"] + run["load_after"]) / 2


def _num(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def to_markdown(result: dict) -> str:
    m, p = result["machine"], result.get("projection")
    runs = result["runs"]
    busy = [r for r in runs if max(r["load_before"], r["load_after"]) > 1.5]
    lines = [
        "# Scale: extract-archive on the local engine and on Ray Data", "",
        f"Generated by `spacy project run scale`: the corpus's articles replicated to {result['articles']:,} "
        f"(ids made distinct), through `{result['model']}` with batches of {result['batch_size']}, each engine in a fresh "
        f"process on an empty store. Machine: {m['cpus']} CPUs, Python {m['python']}, {m['platform']}.", "",
        *table(
            ["engine", "workers", "words", "start-up (s)", "total (s)", "words/s", "steady words/s",
             "peak memory per worker (MB)", "driver peak (MB)", "overhead (ms/article)", "commit (ms/article)"],
            ([r["engine"], r["workers"], f"{r['words']:,}", _num(r["startup_seconds"], 1), _num(r["seconds"], 1),
              _num(r["words_per_second"]), f"**{_num(r['steady_words_per_second'])}**",
              " / ".join(_num(x) for x in r["worker_peak_rss_mb"]), _num(r["driver_peak_rss_mb"]),
              _num(r["overhead_ms_per_article"], 1), _num(r["commit_ms_per_article"], 1)] for r in runs),
        ), "",
        "Start-up: until the first batch is committed (Ray, actors, loading the pipeline). Steady: from the first "
        "commit to the last. Overhead: worker-slot time outside the pipeline per article in the steady part "
        "(scheduling, serialisation, waiting for the driver), accurate to about one batch per worker over the run "
        "(workers run ahead of the commits they are timed by), so a value near or below 0 means no overhead "
        "measurable beside the pipeline; commit: the driver's Parquet writes per article. The local engine's "
        "worker is the driver itself.",
    ]
    if busy:
        names = ", ".join(f"{r['engine']} x{r['workers']} ({r['load_before']:.1f} before, {r['load_after']:.1f} after)" for r in busy)
        lines += ["", f"**The machine was shared**: the 1-minute load average was above 1.5 around {names}; "
                      "these figures are lower than an idle machine's."]
    missing = [f"{e} x{w}" for e, w in ENGINES if _run(result, e, w) is None]
    if missing:
        lines += ["", f"**Not measured** (the run was cut short): {', '.join(missing)}."]
    if p is None:
        return "\n".join(lines) + "\n"
    one, two = _run(result, "ray", 1), _run(result, "ray", 2)
    gain = (f"{two['steady_words_per_second'] / one['steady_words_per_second']:.2f}x"
            if one and one["steady_words_per_second"] else "(not measured)")
    caveat = (f", but under a load average of {_load(two):.1f} against {_load(one):.1f} for the 1-worker run: the "
              "machine, not the engine, made the difference; compare them on an idle machine"
              if one and abs(_load(one) - _load(two)) > 1 else "")
    driver_ok = p["driver_articles_per_second"] > p["cluster_articles_per_second"]
    lines += [
        "", f"## Projection: {p['articles']:,} articles on {p['nodes']} nodes", "",
        f"From the 2-worker run: {_num(p['words_per_article'])} words per article; {p['nodes']} nodes like this one "
        f"(2 CPUs, 2 actors each) would run about {_num(p['cluster_words_per_second'])} words/s = "
        f"{_num(p['cluster_articles_per_second'], 1)} articles/s: **{_num(p['hours'], 1)} hours**, "
        f"{_num(p['node_hours'])} node-hours (about ${_num(p['cost_usd'])} at an assumed ${p['node_hour_usd']:.2f} per "
        "2-CPU node-hour). The pipeline dominates the time and so the cost; the rest is the overhead columns above.",
        "",
        f"- Adding nodes adds throughput if nothing is shared: here a second worker on the second core gave "
        f"{gain} the steady words/s of one{caveat}. Across nodes only the driver is shared.",
        f"- The driver {'is not' if driver_ok else 'would be'} the limit: it committed "
        f"{_num(p['driver_articles_per_second'])} articles/s here, against the "
        f"{_num(p['cluster_articles_per_second'], 1)} articles/s the cluster would produce"
        + ("." if driver_ok else "; commit larger batches (`--batch-size`) or write from the actors."),
        f"- Memory: {_num(p['worker_peak_rss_mb'])} MB per worker, so a node needs about that much per actor it runs.",
        f"- Output: about {_num(p['store_gb'], 2)} GB of Parquet for the whole archive.",
        "- The input goes through the driver (`from_items`): give the archive as several JSONL or Parquet parts, "
        "one run per part into the same `--out` (each run resumes and counts only its own input).",
        "- Start-up is paid once per run, not per article.",
    ]
    return "\n".join(lines) + "\n"
