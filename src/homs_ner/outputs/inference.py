"""Running a trained pipeline over whole articles of any length, empty ones included.

Why not plain `nlp.pipe`: an article of 200,000 characters took 2 min and 2.15 GB (50,000:
20 s), growing faster than its length, and one empty text in a batch crashed the whole batch.
Here every text is cut into windows of at most `max_chars` (at line ends, long lines at
sentence ends, an endless sentence at a space), the windows of all texts go through
`nlp.pipe` together, and each article's doc is put back together with `Doc.from_docs`: its
text is exactly the input, entities and clauses keep their article offsets, and relations
(which never cross a paragraph: see `components.find_candidates`) are shifted back. Texts
that are empty or whitespace only skip the pipeline and give a doc with nothing found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from itertools import islice

import numpy
from spacy.language import Language
from spacy.tokens import Doc

from homs_ner.data.conversion import relations_of

# Windows of about 500 words: long enough for every clause seen in the corpus (the longest
# annotated paragraph has 700 characters), short enough that memory stays flat.
MAX_WINDOW_CHARS = 3000
# Where a window may end, best first: a line end, a sentence end, any whitespace.
_CUT_KINDS = (re.compile(r"\n"), re.compile(r"(?<=[.!?\u061f\u06d4])\s+"), re.compile(r"\s+"))


def windows(
    text: str, max_chars: int = MAX_WINDOW_CHARS, kinds: tuple[re.Pattern[str], ...] = _CUT_KINDS
) -> list[tuple[int, int]]:
    """Contiguous (start, end) pieces covering `text`, each at most `max_chars` where possible.

    Cuts at line ends first, then at sentence ends, then at whitespace, and inside a word only
    as a last resort, so a window never splits a paragraph that fits.
    """
    if len(text) <= max_chars:
        return [(0, len(text))]
    if not kinds:
        return [(s, min(s + max_chars, len(text))) for s in range(0, len(text), max_chars)]
    bounds = [0, *(m.end() for m in kinds[0].finditer(text) if 0 < m.end() < len(text)), len(text)]
    packed, start = [], 0
    for prev, cut in zip(bounds, bounds[1:]):
        if cut - start > max_chars and prev > start:
            packed.append((start, prev))
            start = prev
    packed.append((start, len(text)))
    out = []
    for s, e in packed:
        out += [(s + a, s + b) for a, b in windows(text[s:e], max_chars, kinds[1:])] if e - s > max_chars else [(s, e)]
    return out


def _shifted(ref: dict, offset: int) -> dict:
    return {**ref, "start": ref["start"] + offset, "end": ref["end"] + offset}


def _keep_span_scores(doc: Doc, parts: list[Doc]) -> None:
    """Carry the span categorizer's per-span scores (`spans.attrs["scores"]`) over a join.

    `Doc.from_docs` concatenates span groups in window order but drops their attrs; the
    archive store keeps each clause's score, so the windows' scores are concatenated alike.
    """
    for key, group in doc.spans.items():
        # A window without spans has no scores (spancat leaves its empty group bare); a group
        # from a component that keeps no scores gives a length mismatch and stays bare too.
        scores = [numpy.asarray(part.spans[key].attrs.get("scores", ()), dtype="float32").reshape(-1)
                  for part in parts if key in part.spans and len(part.spans[key])]
        joined = numpy.concatenate(scores) if scores else numpy.empty(0, dtype="float32")
        if len(joined) == len(group):
            group.attrs["scores"] = joined


def _join(text: str, parts: list[tuple[int, Doc]]) -> Doc:
    """One doc for the whole text from its windows' docs, relations shifted to article offsets."""
    if len(parts) == 1:
        return parts[0][1]
    # user_data (relations, the transformer's per-window output) cannot be concatenated:
    # relations are shifted below, the transformer output is not kept.
    doc = Doc.from_docs([d for _, d in parts], ensure_whitespace=False, exclude=["user_data", "tensor"])
    _keep_span_scores(doc, [d for _, d in parts])
    doc._.relations = [
        {**rel, "head": _shifted(rel["head"], offset), "child": _shifted(rel["child"], offset)}
        for offset, part in parts
        for rel in relations_of(part)
    ]
    assert doc.text == text, "windows must cover the text exactly"
    return doc


def pipe_articles(
    nlp: Language, texts: Iterable[str], batch_size: int = 4, max_chars: int = MAX_WINDOW_CHARS
) -> Iterator[Doc]:
    """One processed doc per text, in order; `batch_size` texts at a time, their windows batched alike."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    texts = iter(texts)
    while chunk := list(islice(texts, batch_size)):
        pieces = [
            (i, start, text[start:end])
            for i, text in enumerate(chunk)
            if text.strip()
            for start, end in windows(text, max_chars)
        ]
        # A window of only whitespace (possible between long blank runs) skips the pipeline too.
        docs = iter(nlp.pipe((p for _, _, p in pieces if p.strip()), batch_size=batch_size))
        by_text: dict[int, list[tuple[int, Doc]]] = {}
        for i, start, piece in pieces:
            by_text.setdefault(i, []).append((start, next(docs) if piece.strip() else nlp.make_doc(piece)))
        for i, text in enumerate(chunk):
            yield _join(text, by_text[i]) if i in by_text else nlp.make_doc(text)
