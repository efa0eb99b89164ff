"""Articles to show or extract from: annotated ones from DocBins, plain ones from text files,
and a model's predictions on either."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from homs_ner.data.conversion import doc_meta
from homs_ner.outputs.inference import pipe_articles
from homs_ner.outputs.inputs import ArticleFile


def read_articles(items: Sequence[Path | ArticleFile], vocab: Vocab) -> tuple[list[tuple[str, Doc]], list[tuple[str, str]]]:
    """(id, doc) of the annotated articles in ``.spacy`` DocBins, and (id, text) of every
    article, DocBins' and text files' alike (the id: the article id in the doc's meta, else
    the file name). Text files come already read and checked (`homs_ner.outputs.inputs`)."""
    annotated: list[tuple[str, Doc]] = []
    texts: list[tuple[str, str]] = []
    for item in items:
        if isinstance(item, ArticleFile):
            texts.append((item.id, item.text))
            continue
        for doc in DocBin().from_disk(item).get_docs(vocab):
            doc_id = str(doc_meta(doc).get("article_id") or f"{item.stem}-{len(annotated)}")
            annotated.append((doc_id, doc))
            texts.append((doc_id, doc.text))
    return annotated, texts


def predict_articles(
    nlp: Language, texts: Sequence[tuple[str, str]], batch_size: int = 4, advance: Callable[[], None] = lambda: None
) -> list[tuple[str, Doc]]:
    """(id, predicted doc) per article, long ones in windows (`pipe_articles`); `advance` is called after each."""
    predicted = []
    for (doc_id, _), doc in zip(texts, pipe_articles(nlp, (text for _, text in texts), batch_size)):
        predicted.append((doc_id, doc))
        advance()
    return predicted
