"""The project's Arabic tokenizer: spaCy's Arabic rules plus HTML-entity remnants and punctuation fixes.

Seed 001 was scraped with broken HTML entities glued to words (``لـrsquo;القدس العربيrsquo;``).
The corpus keeps every text exactly as published, so instead of cleaning the text we teach
the tokenizer to split ``lsquo;``/``rsquo;``/``quot;`` (and friends) off as tokens of their
own; then a name's span can end where the name ends. Proclitics stay attached (the
whole-token convention of ANERcorp and Wojood), as in spaCy's own Arabic tokenizer.
"""

from __future__ import annotations

import re
from typing import Callable

import spacy
from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.util import compile_infix_regex, compile_prefix_regex, compile_suffix_regex

ENTITY_REMNANT = r"(?:[lr]squo|[lr]dquo|quot|amp|nbsp|hellip|ndash|mdash);"
_ARABIC = "\u0600-\u06FF"
# spaCy's Arabic rules leave a sentence's full stop on a number, a closing quote or a
# tanween alif (``2012.``, ``ضغط".``, ``تقريباً.``): split it off like after any other word.
FINAL_STOP = rf"(?<=[0-9{_ARABIC}\"'»”’)%٪])\."
# A dash glued to a word as a parenthesis (``حي الوعر -آخر ... حمص- تحت``).
DASH_AFTER = rf"(?<=[{_ARABIC}])[-–—]"
DASH_BEFORE = rf"[-–—](?=[{_ARABIC}])"
# A quote opened right after a proclitic (``و"الثوار``): the name starts after the quote.
QUOTE_AFTER_CLITIC = rf"(?<=[{_ARABIC}])[\"«“”»](?=[{_ARABIC}])"
# Letters only (no Arabic-Indic digits, which share the block): what may follow glued punctuation.
_LETTER = "\u0621-\u064A\u066E-\u06D3"
_PUNCT = ".،؛:!?؟"
# Punctuation glued between two words, as scraped news has it (``المقبل.وينص``, ``حمص،وقال``,
# ``2016.وقال``, ``قال:"إن``). At least two word characters before it, so one-letter
# abbreviations (``د.محمد``, ``ص.ب``) stay whole; a letter after it, so numbers (``2.5``,
# ``٢.٥``) and Latin abbreviations or URLs (``U.N.``, ``www.sana.sy``) are untouched.
GLUED_PUNCT = rf"(?<=[0-9{_ARABIC}\"'»”’)]{{2}})[{_PUNCT}](?=[\"'«“]?[{_LETTER}])"
# A closing quote between a word and that punctuation (``شهرين".وقال``), and an opening quote
# right after it (``المقبل."وينص``): quote marks stay outside spans.
QUOTE_BEFORE_PUNCT = rf"(?<=[{_ARABIC}])[\"'»”’](?=[{_PUNCT}])"
QUOTE_AFTER_PUNCT = rf"(?<=[{_PUNCT}])[\"'«“](?=[{_LETTER}])"
TOKENIZER_NAME = "homs_ner.ArabicTokenizer.v1"


@spacy.registry.tokenizers(TOKENIZER_NAME)
def create_tokenizer() -> Callable[[Language], Tokenizer]:
    """spaCy's Arabic tokenizer with HTML-entity remnants split as prefix, suffix or infix."""

    def make(nlp: Language) -> Tokenizer:
        defaults = nlp.Defaults
        prefixes = [ENTITY_REMNANT, DASH_BEFORE, *(defaults.prefixes or [])]
        suffixes = [ENTITY_REMNANT, FINAL_STOP, DASH_AFTER, *(defaults.suffixes or [])]
        infixes = [
            ENTITY_REMNANT, QUOTE_AFTER_CLITIC, GLUED_PUNCT, QUOTE_BEFORE_PUNCT, QUOTE_AFTER_PUNCT,
            *(defaults.infixes or []),
        ]
        return Tokenizer(
            nlp.vocab,
            rules=defaults.tokenizer_exceptions,
            prefix_search=compile_prefix_regex(prefixes).search,
            suffix_search=compile_suffix_regex(suffixes).search,
            infix_finditer=compile_infix_regex(infixes).finditer,
            token_match=defaults.token_match,
            url_match=_url_match(defaults.url_match),
        )

    return make


def _url_match(default: Callable[[str], object] | None) -> Callable[[str], object] | None:
    """spaCy's URL matcher, except for Arabic words joined by a full stop.

    Its host-name pattern accepts any Unicode letters, so ``المقبل.وينص`` (a sentence end
    glued to the next word) was kept whole as a "URL" before the punctuation rules could
    split it. A URL with a scheme (``https://…``) is still matched, Arabic or not. A compiled
    pattern's own `match`, because spaCy serialises the tokenizer through its pattern.
    """
    if default is None:
        return None
    pattern = default.__self__.pattern.removeprefix("(?u)")  # type: ignore[attr-defined]
    return re.compile(rf"(?u)(?=.*://|[^{_LETTER}]*$){pattern}").match


def blank_arabic() -> Language:
    """A blank Arabic pipeline with the project tokenizer: the one way texts become tokens."""
    return spacy.blank("ar", config={"nlp": {"tokenizer": {"@tokenizers": TOKENIZER_NAME}}})
