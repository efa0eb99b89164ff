"""The corpus: articles, their metadata, and the paragraphs annotators label.

Articles live as `corpus/articles/<id>.txt`, text exactly as published, with one record per
article in `corpus/articles.jsonl`. Doccano examples are paragraphs (its UI lags past about
60 entities per example); every paragraph keeps the article id and character offset it came
from, so annotations map back to the article without loss.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from homs_ner.data.io import atomic_write_text, jsonl_lines

SPLITS = ("train", "dev", "test")
SOURCES = ("seed", "synthetic")
MAX_PARAGRAPH_CHARS = 700
# Sentence ends: Latin and Arabic full stop/question mark/exclamation, then whitespace.
_SENTENCE_END = re.compile(r"(?<=[.!?\u061f\u06d4])\s+")


class CorpusError(ValueError):
    """A corpus file is inconsistent; the message names the file, line and reason."""


@dataclass(frozen=True)
class Article:
    """One news article and where it belongs."""

    id: str
    title: str
    outlet: str
    date: str
    source: Literal["seed", "synthetic"]
    split: Literal["train", "dev", "test"]
    text: str
    event: str = ""
    """The event group (e.g. `al-waer-2014-2017`): leave-one-event-out cross-validation holds
    out one group at a time."""


@dataclass(frozen=True)
class Paragraph:
    """A slice `article.text[start:end]`: the unit annotators label in Doccano."""

    id: str
    article_id: str
    index: int
    start: int
    end: int
    text: str
    source: str
    split: str
    # The article's, for the annotator's context (Doccano's metadata panel).
    title: str = ""
    outlet: str = ""
    date: str = ""

    @property
    def meta(self) -> dict:
        """The Doccano example meta: enough to rebuild the article, and its title, outlet, date."""
        return {
            "paragraph_id": self.id,
            "article_id": self.article_id,
            "paragraph": self.index,
            "start": self.start,
            "end": self.end,
            "source": self.source,
            "split": self.split,
            "title": self.title,
            "outlet": self.outlet,
            "date": self.date,
        }


def _check_record(record: dict, where: str) -> None:
    missing = [k for k in ("id", "title", "outlet", "date", "source", "split") if k not in record]
    if missing:
        raise CorpusError(f"{where}: missing {', '.join(missing)}")
    if record["source"] not in SOURCES:
        raise CorpusError(f"{where}: source {record['source']!r} is not one of {SOURCES}")
    if record["split"] not in SPLITS:
        raise CorpusError(f"{where}: split {record['split']!r} is not one of {SPLITS}")
    if record["source"] == "synthetic" and record["split"] == "test":
        raise CorpusError(f"{where}: synthetic article {record['id']} cannot be in the test split")


def read_metadata(path: Path) -> list[dict]:
    """Read `articles.jsonl`, checking every record; errors name file and line."""
    records, seen = [], set()
    for lineno, line in jsonl_lines(path.read_text(encoding="utf-8")):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise CorpusError(f"{where}: not valid JSON: {err}") from err
        _check_record(record, where)
        if record["id"] in seen:
            raise CorpusError(f"{where}: duplicate article id {record['id']}")
        seen.add(record["id"])
        records.append(record)
    return records


def archive_records(articles: Sequence[Article], n: int | None = None) -> list[dict]:
    """The articles as `extract-archive` JSONL records (id, text, date, outlet, url), each once,
    or `n` of them copied round-robin: copy k > 0 of `<id>` is `<id>~k` (the scale report's input)."""
    count = len(articles) if n is None else n
    return [
        {"id": a.id if i < len(articles) else f"{a.id}~{i // len(articles)}", "text": a.text, "date": a.date,
         "outlet": a.outlet, "url": None}
        for i, a in ((i, articles[i % len(articles)]) for i in range(count))
    ]


def load_articles(corpus_dir: Path) -> list[Article]:
    """All articles with their text, in metadata order."""
    meta_path = corpus_dir / "articles.jsonl"
    articles = []
    for record in read_metadata(meta_path):
        text_path = corpus_dir / "articles" / f"{record['id']}.txt"
        if not text_path.exists():
            raise CorpusError(f"{meta_path}: article {record['id']} has no text file {text_path}")
        text = text_path.read_text(encoding="utf-8")
        if "\r" in text:
            raise CorpusError(f"{text_path}: CRLF line endings; Doccano offsets would shift")
        fields = {k: record[k] for k in ("id", "title", "outlet", "date", "source", "split")}
        articles.append(Article(**fields, text=text, event=str(record.get("event", ""))))
    return articles


def _sentence_chunks(text: str, start: int, max_chars: int) -> Iterator[tuple[int, int]]:
    """Cut one long line at sentence ends into chunks of at most `max_chars` (greedy)."""
    bounds = [start] + [start + m.end() for m in _SENTENCE_END.finditer(text)] + [start + len(text)]
    chunk_start = bounds[0]
    for prev, cut in zip(bounds, bounds[1:]):
        if cut - chunk_start > max_chars and prev > chunk_start:
            yield chunk_start, prev
            chunk_start = prev
    yield chunk_start, bounds[-1]


def paragraph_spans(text: str, max_chars: int = MAX_PARAGRAPH_CHARS) -> list[tuple[int, int]]:
    """(start, end) of each non-blank line, long lines cut at sentences; whitespace trimmed."""
    spans = []
    for match in re.finditer(r"[^\n]+", text):
        line = match.group()
        if not line.strip():
            continue
        for s, e in _sentence_chunks(line, match.start(), max_chars):
            chunk = text[s:e]
            left = len(chunk) - len(chunk.lstrip())
            right = len(chunk.rstrip())
            if right > left:
                spans.append((s + left, s + right))
    return spans


def paragraphs(article: Article, max_chars: int = MAX_PARAGRAPH_CHARS) -> list[Paragraph]:
    """The article cut into annotation units, each mapping back by offset."""
    return [
        Paragraph(
            id=f"{article.id}:{i:03d}",
            article_id=article.id,
            index=i,
            start=s,
            end=e,
            text=article.text[s:e],
            source=article.source,
            split=article.split,
            title=article.title,
            outlet=article.outlet,
            date=article.date,
        )
        for i, (s, e) in enumerate(paragraph_spans(article.text, max_chars))
    ]


def write_paragraphs(articles: Iterable[Article], path: Path) -> int:
    """Write the Doccano upload view of the corpus (one paragraph a line, meta nested)."""
    lines = [
        json.dumps({"text": p.text, "meta": p.meta}, ensure_ascii=False)
        for article in articles
        for p in paragraphs(article)
    ]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return len(lines)


def ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def shared_ngrams(
    candidates: dict[str, list[str]], references: dict[str, list[str]], n: int = 8
) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """For each candidate id, the n-grams of tokens it shares with a reference, and with which one.

    This is how the project shows that no synthetic article paraphrases a seed article.
    """
    index: dict[tuple[str, ...], str] = {}
    for ref_id, tokens in references.items():
        for gram in ngrams(tokens, n):
            index.setdefault(gram, ref_id)
    found = {}
    for cand_id, tokens in candidates.items():
        hits = sorted((index[g], g) for g in ngrams(tokens, n) if g in index)
        if hits:
            found[cand_id] = hits
    return found


def seed_overlaps(articles: Iterable[Article], tokenize: Callable[[str], list[str]], n: int = 8) -> dict:
    """Synthetic articles sharing an n-token sequence with a seed article (should be empty)."""
    articles = list(articles)
    tokens = {a.id: tokenize(a.text) for a in articles}
    seeds = {a.id: tokens[a.id] for a in articles if a.source == "seed"}
    synthetic = {a.id: tokens[a.id] for a in articles if a.source == "synthetic"}
    return shared_ngrams(synthetic, seeds, n)
