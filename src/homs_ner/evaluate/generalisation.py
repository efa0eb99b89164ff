"""Does the model find names it was never trained on? Recall on unseen and seen mentions.

A gold entity of the evaluated docs is *unseen* when its normalised text never occurs as an
entity in the training docs. Normalisation removes what differs between spellings of the
same name in Arabic news and not the name itself: diacritics and tatweel, hamza forms of
alef, taa marbuta / haa, alef maqsura / yaa, and the proclitics و ف ب ل ك and the article
ال at the start of each word. Why: a model that only memorises the training events' names
scores well on a test split about the same events; recall on unseen mentions is the figure
that predicts how it does on a new event.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence

from spacy.tokens import Doc

_DIACRITICS = re.compile("[\u064b-\u0652\u0670\u0640]")  # harakat, dagger alef, tatweel
_LETTERS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ة": "ه", "ى": "ي"})
_CONJUNCTIONS = ("و", "ف")
_PREPOSITIONS = ("ب", "ل", "ك")
_MIN_STEM = 2


def _strip_proclitics(word: str) -> str:
    """Remove a conjunction, then a preposition, then the article, while a stem remains."""
    for prefixes in (_CONJUNCTIONS, _PREPOSITIONS):
        if word[:1] in prefixes and len(word) - 1 >= _MIN_STEM + 1:
            word = word[1:]
    if word.startswith("ال") and len(word) - 2 >= _MIN_STEM:
        word = word[2:]
    return word


def normalise(text: str) -> str:
    """The comparison key of a mention (see the module doc)."""
    text = _DIACRITICS.sub("", text).translate(_LETTERS)
    return " ".join(_strip_proclitics(word) for word in text.split())


def entity_vocabulary(docs: Iterable[Doc]) -> set[str]:
    """Normalised texts of every entity in `docs` (any label)."""
    return {normalise(ent.text) for doc in docs for ent in doc.ents}


def seen_unseen_recall(gold: Sequence[Doc], pred: Sequence[Doc], seen: set[str]) -> dict[str, dict]:
    """Per label and overall: recall (strict: same boundaries and label) on unseen and seen
    gold mentions, with their counts."""
    found: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for gold_doc, pred_doc in zip(gold, pred):
        predicted = {(e.start_char, e.end_char, e.label_) for e in pred_doc.ents}
        for ent in gold_doc.ents:
            group = "seen" if normalise(ent.text) in seen else "unseen"
            hit = (ent.start_char, ent.end_char, ent.label_) in predicted
            found[(ent.label_, group)].append(hit)
            found[("micro", group)].append(hit)
    labels = sorted({label for label, _ in found} - {"micro"}) + ["micro"]
    return {
        label: {
            group: {"recall": _mean(found[(label, group)]), "n": len(found[(label, group)])}
            for group in ("unseen", "seen")
        }
        for label in labels
    }


def _mean(hits: list[bool]) -> float:
    return sum(hits) / len(hits) if hits else 0.0
