"""The project's Arabic tokenizer: spaCy's Arabic rules plus HTML-entity remnants and punctuation fixes.

Seed 001 was scraped with broken HTML entities glued to words (``لـrsquo;القدس العربيrsquo;``).
The corpus keeps every text exactly as published, so instead of cleaning the text we teach
the tokenizer to split ``lsquo;``/``rsquo;``/``quot;`` (and friends) off as tokens of their
own; then a name's span can end where the name ends. Proclitics stay attached (the
whole-token convention of ANERcorp and Wojood), as in spaCy's own Arabic tokenizer.
"""

from __future__ import annotations

from typing import Callable

import spacy
from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.util import compile_infix_regex, compile_prefix_regex, compile_suffix_regex

ENTITY_REMNANT = r"(?:[lr]squo|[lr]dquo|quot|amp|nbsp|hellip|ndash|mdash);"
_ARABIC = "\u0600-\u06FF"
# spaCy's Arabic rules leave a sentence's full stop on a number, a closing quote or a
# tanween alif (``2012.``, ``ضغط".``, ``تقريباً.``): split it off like after any other word.
FINAL_STOP = rf"(?<=[0-9{_ARABIC}\"'»”’)])\."
# A dash glued to a word as a parenthesis (``حي الوعر -آخر ... حمص- تحت``).
DASH_AFTER = rf"(?<=[{_ARABIC}])[-–—]"
DASH_BEFORE = rf"[-–—](?=[{_ARABIC}])"
# A quote opened right after a proclitic (``و"الثوار``): the name starts after the quote.
QUOTE_AFTER_CLITIC = rf"(?<=[{_ARABIC}])[\"«“”»](?=[{_ARABIC}])"
TOKENIZER_NAME = "homs_ner.ArabicTokenizer.v1"


@spacy.registry.tokenizers(TOKENIZER_NAME)
def create_tokenizer() -> Callable[[Language], Tokenizer]:
    """spaCy's Arabic tokenizer with HTML-entity remnants split as prefix, suffix or infix."""

    def make(nlp: Language) -> Tokenizer:
        defaults = nlp.Defaults
        prefixes = [ENTITY_REMNANT, DASH_BEFORE, *(defaults.prefixes or [])]
        suffixes = [ENTITY_REMNANT, FINAL_STOP, DASH_AFTER, *(defaults.suffixes or [])]
        infixes = [ENTITY_REMNANT, QUOTE_AFTER_CLITIC, *(defaults.infixes or [])]
        return Tokenizer(
            nlp.vocab,
            rules=defaults.tokenizer_exceptions,
            prefix_search=compile_prefix_regex(prefixes).search,
            suffix_search=compile_suffix_regex(suffixes).search,
            infix_finditer=compile_infix_regex(infixes).finditer,
            token_match=defaults.token_match,
            url_match=defaults.url_match,
        )

    return make


def blank_arabic() -> Language:
    """A blank Arabic pipeline with the project tokenizer: the one way texts become tokens."""
    return spacy.blank("ar", config={"nlp": {"tokenizer": {"@tokenizers": TOKENIZER_NAME}}})
