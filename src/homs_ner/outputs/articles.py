"""Articles to show or extract from: annotated ones from DocBins, plain ones from text files,
and a model's predictions on either."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from homs_ner.data.conversion import doc_meta


def read_articles(files: Sequence[Path], vocab: Vocab) -> tuple[list[tuple[str, Doc]], list[tuple[str, str]]]:
    """(id, doc) of the annotated articles in ``.spacy`` DocBins, and (id, text) of every
    article, DocBins' and ``.txt`` files' alike (the id: the article id in the doc's meta,
    else the file name)."""
    annotated: list[tuple[str, Doc]] = []
    texts: list[tuple[str, str]] = []
    for path in files:
        if path.suffix == ".spacy":
            for doc in DocBin().from_disk(path).get_docs(vocab):
                doc_id = str(doc_meta(doc).get("article_id") or f"{path.stem}-{len(annotated)}")
                annotated.append((doc_id, doc))
                texts.append((doc_id, doc.text))
        else:
            texts.append((path.stem, path.read_text(encoding="utf-8")))
    return annotated, texts


def predict_articles(
    nlp: Language, texts: Sequence[tuple[str, str]], advance: Callable[[], None] = lambda: None
) -> list[tuple[str, Doc]]:
    """(id, predicted doc) per article; `advance` is called after each."""
    predicted = []
    for (doc_id, _), doc in zip(texts, nlp.pipe(text for _, text in texts)):
        predicted.append((doc_id, doc))
        advance()
    return predicted
