"""Which paragraphs annotators never see: page furniture copied along with an article.

Why: of the 74 seed paragraphs, 11 are not news text but leftovers of the web page: a link
(`[زمان الوصل](#)`), a source-list label (`المصادر:`), a byline (`وائل عصام`), a photo
credit (`مصدر الصورة Reuters`), a "more on this story" link and bare headings. Paging
through them costs annotators time and teaches nothing about agreements.

The rule (documented in the README), applied to a paragraph's whole text:

1. a Markdown link and nothing else: ``[text](target)``;
2. a photo credit: starts with «مصدر الصورة» or «Image source»;
3. a label that ends in a colon, at most 3 words (``المصادر:``);
4. a bare heading or byline: at most 5 words, no sentence-final punctuation (. ! ? ؟)
   and no digit. Headings with a digit are dates (``مارس/آذار 2017``), which the
   guidelines label as DATE, so they stay.

Only what annotators are *shown* changes: paragraphs keep their ids, offsets and text
(`corpus.paragraphs` numbers every paragraph, boilerplate included), so existing
annotations, the gold files and the text-anchored files convert exactly as before.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from homs_ner.data.corpus import Paragraph

MAX_HEADING_WORDS = 5
MAX_LABEL_WORDS = 3
_LINK_ONLY = re.compile(r"^\[[^\]]*\]\([^)]*\)$")
_PHOTO_CREDIT = re.compile(r"^(?:مصدر الصورة|Image source)\b")
_SENTENCE_END = re.compile(r"[.!?\u061f\u06d4]")
_DIGIT = re.compile(r"\d")


def boilerplate_reason(text: str) -> str | None:
    """Why `text` (one paragraph) is page furniture rather than news text; None if it is text."""
    text = text.strip()
    words = text.split()
    if _LINK_ONLY.match(text):
        return "a link and nothing else"
    if _PHOTO_CREDIT.match(text):
        return "a photo credit"
    if text.endswith(":") and len(words) <= MAX_LABEL_WORDS:
        return "a list label ending in a colon"
    if len(words) <= MAX_HEADING_WORDS and not _SENTENCE_END.search(text) and not _DIGIT.search(text):
        return f"a bare heading or byline (at most {MAX_HEADING_WORDS} words, no full stop, no digit)"
    return None


def hold_back(paragraphs: Sequence[Paragraph]) -> tuple[list[Paragraph], list[Paragraph]]:
    """(paragraphs annotators see, page furniture held back), each in corpus order."""
    held = [p for p in paragraphs if boilerplate_reason(p.text)]
    return [p for p in paragraphs if not boilerplate_reason(p.text)], held
