"""Experiments beyond the single split: leave-one-seed-out cross-validation and a learning curve.

Five real articles are few and one split can mislead, so these report the mean and spread
over several trainings. Each run trains with `spacy train` (same config as the main job)
into a temporary folder and is scored by `evaluation.evaluate`.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import spacy
from spacy.cli.train import train as spacy_train
from spacy.tokens import Doc, DocBin

from homs_ner.data.conversion import doc_meta
from homs_ner.data.io import write_json
from homs_ner.data.schema import Schema
from homs_ner.evaluate.evaluation import evaluate
from homs_ner.evaluate.generalisation import entity_vocabulary
from homs_ner.report import pct, table

HEADLINE = {
    "entities micro F1": lambda r: r["entities_seqeval"].get("micro avg", {}).get("f1", 0.0),
    "clause overlap F1": lambda r: r["clauses"]["overlap"]["f1"],
    # Undefined (None), not 0, when no predicted clause overlaps a gold one.
    "clause type accuracy": lambda r: r["clauses"]["type_agreement"] if r["clauses"]["type_matched"] else None,
    "relations F1 (gold spans)": lambda r: r["relations_gold_spans"]["micro"]["f1"],
    "relations F1 (end to end)": lambda r: r["relations_end_to_end"]["micro"]["f1"],
    "unseen-mention recall": lambda r: r["entities_unseen_seen"]["micro"]["unseen"]["recall"] if "entities_unseen_seen" in r else None,
    "entities overlap F1": lambda r: r["entities_overlap"]["micro"]["f1"] if "entities_overlap" in r else None,
    "clause typed exact F1": lambda r: r["clauses"]["typed_exact"]["f1"] if "typed_exact" in r["clauses"] else None,
}


def load_docs(path: Path) -> list[Doc]:
    return list(DocBin().from_disk(path).get_docs(spacy.blank("ar").vocab))


def _write(docs: Sequence[Doc], path: Path) -> Path:
    DocBin(docs=docs, store_user_data=True).to_disk(path)
    return path


def _meta(doc: Doc, key: str) -> str:
    return str(doc_meta(doc).get(key, ""))


def train_and_score(
    config: Path, train: Sequence[Doc], dev: Sequence[Doc], test: Sequence[Doc], schema: Schema, overrides: dict
) -> dict:
    """Train one pipeline in a temporary folder and evaluate it on `test`."""
    with tempfile.TemporaryDirectory(prefix="homs-ner-exp-") as tmp:
        work = Path(tmp)
        paths = {"paths.train": str(_write(train, work / "train.spacy")), "paths.dev": str(_write(dev, work / "dev.spacy"))}
        spacy_train(config, work / "out", overrides={**paths, **overrides})
        return evaluate(spacy.load(work / "out" / "model-best"), test, schema, seen=entity_vocabulary(train))


def summarize(runs: dict[str, dict]) -> dict[str, dict]:
    """Mean and standard deviation of the headline figures over the runs where they are defined.

    ``n`` counts those runs: a clause-type accuracy averaged over 3 of 5 folds says so.
    """
    out = {}
    for name, pick in HEADLINE.items():
        per_run = {k: pick(r) for k, r in runs.items()}
        values = [v for v in per_run.values() if v is not None]
        out[name] = {
            "mean": statistics.fmean(values) if values else None,
            "stdev": statistics.stdev(values) if len(values) > 1 else None,
            "n": len(values),
            "runs": per_run,
        }
    return out


Fold = tuple[Sequence[Doc], Sequence[Doc], Sequence[Doc]]
"""A fold's (train, dev, held-out) docs."""


def run_folds(
    config: Path,
    folds: dict[str, Fold],
    schema: Schema,
    overrides: dict,
    progress: Callable[[str], None] = print,
    store: Path | None = None,
    train_missing: bool = True,
) -> dict:
    """Train and score every fold, or take its scores from `store/<fold>.json`.

    Why a store: a 12-fold cross-validation of the transformer is hours on 2 CPU cores, so a
    run that is stopped keeps its finished folds and the next run trains only the others
    (the caller names the store after the config, overrides and data, so a change starts a
    new one). With `train_missing` false nothing is trained: the result has the stored folds
    only, and `folds` says how many there are in all.
    """
    runs = {}
    for name, (train, dev, held) in folds.items():
        saved = store / f"{name}.json" if store is not None else None
        if saved is not None and saved.exists():
            progress(f"fold {name}: scores from {saved}")
            runs[name] = read_fold(saved)
            continue
        if not train_missing:
            progress(f"fold {name}: not run yet")
            continue
        progress(f"fold: held out {name}")
        runs[name] = train_and_score(config, train, dev, held, schema, overrides)
        if saved is not None:
            write_json(saved, runs[name])
    return {"runs": runs, "summary": summarize(runs), "folds": len(folds)}


STORED_FOLD_KEYS = ("entities_seqeval", "clauses", "relations_end_to_end")


class FoldStoreError(ValueError):
    """A file in the fold store that is not a fold's scores."""


def read_fold(path: Path) -> dict:
    """A fold's stored scores; a file that is not one is a FoldStoreError naming it and why.

    Why not retrain over it: the file may be the only copy of an hour's fold, so the user
    decides (deleting it makes the next run train that fold again).
    """
    try:
        scores = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        reason = "not UTF-8 text"
    except json.JSONDecodeError as error:
        reason = f"not JSON (line {error.lineno}: {error.msg})"
    else:
        missing = [k for k in STORED_FOLD_KEYS if not isinstance(scores, dict) or k not in scores]
        if not missing:
            return scores
        reason = f"no {', '.join(missing)} in it"
    raise FoldStoreError(f"{path}: not a fold's stored scores ({reason}); delete it to run that fold again")


def seed_folds(docs: Sequence[Doc]) -> dict[str, Fold]:
    """Hold out each seed article in turn; train on every other article (dev split for selection)."""
    folds = {}
    for held in [d for d in docs if _meta(d, "source") == "seed"]:
        others = [d for d in docs if d is not held]
        train = [d for d in others if _meta(d, "split") != "dev"]
        dev = [d for d in others if _meta(d, "split") == "dev"]
        folds[_meta(held, "article_id")] = (train, dev, [held])
    return folds


def event_folds(docs: Sequence[Doc], events: dict[str, str]) -> dict[str, Fold]:
    """Hold out one event group at a time (its seed articles included); train on the other
    events' train articles, select on their dev articles, score on the held-out event.

    The test split takes no part (no fold trains or scores on it), so that choosing between
    settings by this estimate never looks at the test articles. `events` maps article id to
    event group; every article must have one."""
    docs = [d for d in docs if _meta(d, "split") != "test"]
    missing = sorted({_meta(d, "article_id") for d in docs if not events.get(_meta(d, "article_id"))})
    if missing:
        raise ValueError(f"articles without an event group in the corpus metadata: {', '.join(missing)}")
    folds = {}
    for group in sorted({events[_meta(d, "article_id")] for d in docs}):
        held = [d for d in docs if events[_meta(d, "article_id")] == group]
        others = [d for d in docs if events[_meta(d, "article_id")] != group]
        train = [d for d in others if _meta(d, "split") == "train"]
        dev = [d for d in others if _meta(d, "split") == "dev"]
        folds[group] = (train, dev, held)
    return folds


def learning_curve(
    config: Path,
    train: Sequence[Doc],
    dev: Sequence[Doc],
    test: Sequence[Doc],
    schema: Schema,
    overrides: dict,
    fractions: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
    repeats: int = 3,
    progress: Callable[[str], None] = print,
) -> dict:
    """Train on growing random subsets of the train articles; score each on the test split.

    Every fraction is trained ``repeats`` times, repeat ``r`` drawing its subset with shuffle
    seed ``r`` and training with ``system.seed`` ``r``: the spread at a fraction is then
    what a different draw of articles and a different initialisation change (at 100% only
    the latter). One run per fraction would show noise as a trend.
    """
    by_fraction: dict[str, dict[str, dict]] = {}
    subsets: dict[str, dict[str, list[str]]] = {}
    sizes: dict[str, int] = {}
    for fraction in fractions:
        key = f"{fraction:.0%}"
        size = sizes[key] = max(1, round(fraction * len(train)))
        by_fraction[key], subsets[key] = {}, {}
        for r in range(repeats):
            draw = f"draw {r + 1}"
            subset = random.Random(r).sample(list(train), size)
            progress(f"{key} of the training articles ({size}), {draw} of {repeats}")
            subsets[key][draw] = sorted(_meta(d, "article_id") for d in subset)
            by_fraction[key][draw] = train_and_score(config, subset, dev, test, schema, {**overrides, "system.seed": r})
    return {
        "articles": sizes,
        "repeats": repeats,
        "subsets": subsets,
        "runs": by_fraction,
        "summary": {k: summarize(runs) for k, runs in by_fraction.items()},
    }


NA_NOTE = "n/a: clause type accuracy is undefined when no predicted clause overlaps a gold one."


def _of(s: dict) -> str:
    """' (3 of 5)' when a figure is undefined in some runs."""
    return "" if s["n"] == len(s["runs"]) or s["n"] == 0 else f" ({s['n']} of {len(s['runs'])})"


def learning_curve_markdown(title: str, result: dict, note: str) -> str:
    """One column per fraction: mean ± standard deviation over its repeats."""
    fractions = list(result["summary"])
    head = [f"{k} ({n} article{'s' * (n != 1)})" for k, n in ((k, result["articles"][k]) for k in fractions)]
    cells = {name: [result["summary"][k][name] for k in fractions] for name in HEADLINE}
    lines = [f"# {title}", "", note, "", *table(["measure", *head], (
        [name, *(pct(c["mean"]) + ("" if c["stdev"] is None else f" ± {pct(c['stdev'])}") + _of(c) for c in cells[name])]
        for name in HEADLINE))]
    return "\n".join([*lines, "", NA_NOTE]) + "\n"


def to_markdown(title: str, result: dict, note: str) -> str:
    runs = list(result["runs"])
    lines = [f"# {title}", "", note, "", *table(["measure", *runs, "mean", "stdev"], (
        [name, *(pct(s["runs"][r]) for r in runs), f"**{pct(s['mean'])}**{_of(s)}", pct(s["stdev"])]
        for name, s in result["summary"].items()))]
    return "\n".join([*lines, "", NA_NOTE]) + "\n"
