"""Speed and memory: inference words/second, training seconds/step and peak memory.

Every measurement runs in a fresh subprocess so that its peak resident memory (the child's
`ru_maxrss`) belongs to that measurement alone; the pipelines see the same texts in the same
run. Timings are best-of-N wall clock on this machine (2 CPU cores in CI).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from homs_ner.report import table

# A child reports its own peak memory at exit: ru_maxrss of RUSAGE_CHILDREN is a running
# maximum over all children, so it cannot attribute memory to one measurement.
PEAK_PREFIX = "HOMS_NER_PEAK_RSS_KB="
WRAP = f"""
import atexit, resource, runpy, sys
atexit.register(lambda: print("{PEAK_PREFIX}%d" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr))
target, sys.argv = sys.argv[1], sys.argv[1:]
if target.endswith(".py"):
    runpy.run_path(target, run_name="__main__")
else:
    runpy.run_module(target, run_name="__main__", alter_sys=True)
"""

INFER_SCRIPT = r"""
import json, sys
from homs_ner.evaluate.benchmark import timed_inference
if __name__ == "__main__":  # the spawned worker processes import this file again
    model, texts_path, repeats, processes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    texts = json.load(open(texts_path, encoding="utf-8"))
    print(json.dumps(timed_inference(model, texts, repeats, processes)))
"""


# One long article, as `predict` runs it (windows, see homs_ner.outputs.inference): time and peak
# memory should grow linearly with its length.
LONG_SCRIPT = r"""
import json, sys, time
import spacy
from homs_ner.outputs.inference import pipe_articles
model, path = sys.argv[1], sys.argv[2]
text = open(path, encoding="utf-8").read()
nlp = spacy.load(model)
list(pipe_articles(nlp, [text[:200]]))
start = time.perf_counter()
doc = next(pipe_articles(nlp, [text]))
print(json.dumps({"chars": len(doc.text), "seconds": time.perf_counter() - start}))
"""


def shards(texts: list[str], parts: int) -> list[list[str]]:
    """`texts` dealt to `parts` shards of near-equal length (longest first to the lightest).

    Why: the processes start together and the wall time is the slowest shard's, so the
    shards must carry the same work, not the same number of articles.
    """
    loads, dealt = [0] * parts, [[] for _ in range(parts)]
    for text in sorted(texts, key=len, reverse=True):
        lightest = loads.index(min(loads))
        dealt[lightest].append(text)
        loads[lightest] += len(text)
    return [shard for shard in dealt if shard]


def _infer_worker(model: str, texts: list[str], repeats: int, threads: int, barrier: Any, results: Any) -> None:
    """One process's share: load, warm up, then `repeats` passes, each between two barriers."""
    import resource

    import spacy
    import torch

    torch.set_num_threads(threads)
    nlp = spacy.load(model)
    list(nlp.pipe(texts[:2]))
    words = sum(len([t for t in nlp.make_doc(x) if not t.is_space]) for x in texts)
    for _ in range(repeats):
        barrier.wait()
        for _doc in nlp.pipe(texts, batch_size=8):
            pass
        barrier.wait()
    results.put((words, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def timed_inference(model: str, texts: list[str], repeats: int, processes: int = 1) -> dict:
    """Best-of-`repeats` wall seconds for `processes` processes to run all `texts` together.

    The machine's cores are split between the processes (one process: all cores as torch
    threads; two on 2 cores: one thread each), the way `extract-archive --engine ray` runs
    its workers. Each pass starts when every process has loaded its pipeline and ends when
    the last one finishes; peak memory is the sum over the processes.
    """
    import multiprocessing

    cores = os.cpu_count() or 1
    threads = max(1, cores // processes)
    os.environ["OMP_NUM_THREADS"] = str(threads)  # inherited by the spawned processes
    context = multiprocessing.get_context("spawn")
    parts = shards(texts, processes)
    barrier, results = context.Barrier(len(parts) + 1), context.Queue()
    workers = [context.Process(target=_infer_worker, args=(model, part, repeats, threads, barrier, results))
               for part in parts]
    for worker in workers:
        worker.start()
    best = float("inf")
    for _ in range(repeats):
        _meet(barrier, workers)
        start = time.perf_counter()
        _meet(barrier, workers)
        best = min(best, time.perf_counter() - start)
    done = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    return {"words": sum(w for w, _ in done), "seconds": best, "processes": len(parts), "threads": threads,
            "peak_rss_kb": sum(kb for _, kb in done)}


def _meet(barrier: Any, workers: list[Any]) -> None:
    """Wait at `barrier` with the workers; a worker that died fails the run instead of hanging it."""
    import threading

    def wait() -> None:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    while waiter.is_alive():
        waiter.join(1)
        dead = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
        if dead:
            barrier.abort()
            for worker in workers:
                worker.kill()
            raise RuntimeError(f"an inference process failed (exit code {dead[0]}); its error is above")


def run_module(module: str, args: list[str]) -> tuple[str, float, float]:
    """Run a module (or a .py script) with args in a child; return stdout, wall seconds, peak RSS in MB."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", WRAP, module, *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"python -m {module} {' '.join(args[:3])} failed:\n{done.stderr[-3000:]}")
    peaks = [int(line[len(PEAK_PREFIX):]) for line in done.stderr.splitlines() if line.startswith(PEAK_PREFIX)]
    return done.stdout, seconds, (peaks[-1] / 1024 if peaks else float("nan"))


def inference(model: str, texts: list[str], repeats: int = 3, processes: int = 1) -> dict:
    """Words/s of `model` over `texts` in `processes` processes sharing the cores (see `timed_inference`)."""
    with tempfile.TemporaryDirectory(prefix="homs-ner-bench-") as tmp:
        script, data = Path(tmp) / "infer.py", Path(tmp) / "texts.json"
        script.write_text(INFER_SCRIPT, encoding="utf-8")
        data.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
        out, _, _ = run_module(str(script), [model, str(data), str(repeats), str(processes)])
    result = json.loads(out.strip().splitlines()[-1])
    return {**result, "words_per_second": result["words"] / result["seconds"], "peak_rss_mb": result["peak_rss_kb"] / 1024}


def long_article(model: str, texts: list[str], chars: int) -> dict:
    """Seconds and peak memory for one article of `chars` characters (the texts repeated)."""
    joined = "\n".join(texts)
    text = (joined * (chars // max(len(joined), 1) + 1))[:chars]
    with tempfile.TemporaryDirectory(prefix="homs-ner-bench-") as tmp:
        script, data = Path(tmp) / "long.py", Path(tmp) / "article.txt"
        script.write_text(LONG_SCRIPT, encoding="utf-8")
        data.write_text(text, encoding="utf-8")
        out, _, peak = run_module(str(script), [model, str(data)])
    return {**json.loads(out.strip().splitlines()[-1]), "peak_rss_mb": peak}


def training(config: Path, train: Path, dev: Path, steps: int, extra: list[str]) -> dict:
    """Seconds per step of a short `spacy train` run (initialisation included in `total_seconds`)."""
    with tempfile.TemporaryDirectory(prefix="homs-ner-bench-") as tmp:
        args = ["train", str(config), "--output", tmp, "--paths.train", str(train), "--paths.dev", str(dev),
                "--training.max_steps", str(steps), "--training.eval_frequency", str(steps), *extra]
        _, seconds, peak = run_module("spacy", args)
    return {"steps": steps, "total_seconds": seconds, "peak_rss_mb": peak}


def machine() -> dict:
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}


def to_markdown(result: dict) -> str:
    m = result["machine"]
    lines = ["# Benchmark", "", f"Machine: {m['cpus']} CPUs, Python {m['python']}, {m['platform']}. "
             "Generated by `spacy project run benchmark` (each measurement in its own process; best of "
             f"{result['repeats']} inference passes over the same {result['texts']} articles).", "",
             "## Inference", "", *table(["pipeline", "processes x torch threads", "words", "seconds", "words/s", "peak memory (MB, all processes)"], (
                 [r.get("pipeline", name), f"{r.get('processes', 1)} x {r.get('threads', m['cpus'])}", r["words"], f"{r['seconds']:.2f}",
                  f"**{r['words_per_second']:.0f}**", f"{r['peak_rss_mb']:.0f}"]
                 for name, r in result["inference"].items()))]
    lines += ["", "Target: transformer pipeline >= 2,500 words/s on 2 CPU cores (issue 10). One process uses the "
              "cores as torch threads; two processes with one thread each is how `homs-ner extract-archive "
              "--engine ray --workers 2` runs (the texts dealt to the processes by length, each pass timed "
              "from when both have loaded the pipeline until both are done).", ""]
    if result.get("long"):
        lines += ["## One long article (windows of at most 3,000 characters)", "",
                  *table(["pipeline", "characters", "seconds", "peak memory (MB)"], (
                      [name, f"{r['chars']:,}", f"{r['seconds']:.1f}", f"{r['peak_rss_mb']:.0f}"]
                      for name, runs in result["long"].items() for r in runs)), ""]
    lines += [
              "## Training (short run, initialisation included)", "",
              *table(["pipeline", "steps", "seconds", "seconds/step (incl. init)", "peak memory (MB)"], (
                  [name, r["steps"], f"{r['total_seconds']:.1f}", f"{r['total_seconds'] / r['steps']:.1f}", f"{r['peak_rss_mb']:.0f}"]
                  for name, r in result["training"].items()))]
    if result.get("workflow_seconds"):
        lines += ["", f"Whole main workflow (`spacy project run all --force`): **{result['workflow_seconds'] / 60:.1f} min** "
                  "(target <= 20 min on 2 cores)."]
    return "\n".join(lines) + "\n"
