"""Training-time augmentation, spaCy's way: registered augmenters for `[corpora.train.augmenter]`.

Why: the training articles describe a few events, so the same few dozen names recur and the
model learns the names rather than the contexts that make a mention an actor or a place.
One augmenter, `homs_ner.names_and_spellings.v1`, yields the original example and, each with
its own probability, two variants:

- mention replacement: person names and place names are replaced by names
  drawn from gazetteers: Arabic country and city names from CLDR (Babel's locale data) and
  lists of Arabic given names, family names and organisations (`configs/gazetteers/`).
- spelling variants: the spelling variation of real outlets: hamza forms of
  alef, taa marbuta as haa, alef maqsura as yaa, Arabic-Indic against Western digits.

Entities, clauses (`doc.spans`) and relations (`doc._.relations`, keyed by character
offsets) are rebuilt on the new text through one offset map (`Rewrite`), so they stay
aligned. Which tokens of a mention are a *name* is decided from the training data itself:
a token that occurs mostly inside entities is name-like; titles, offices and generic nouns
(«محافظ», «قوات», «الحي») also occur outside entities and are kept.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from spacy.language import Language
from spacy.tokens import Doc
from spacy.tokens import Span as SpacySpan
from spacy.training import Example
from spacy.util import registry

from .conversion import relations_of

PROCLITICS = "وفبلك"
GENERIC_WORDS = frozenset(
    # Places: designators and the anaphoric nouns annotators label as PLACE («الحي», «المدينة»).
    "حي مدينة بلدة قرية مخيم ريف محافظة منطقة ناحية أحياء بلاد دولة عاصمة طريق معبر حاجز جنوب شمال شرق غرب وسط "
    # Organisations: a run with one of these words is a body, not a person or a place.
    "صحيفة وكالة موقع شبكة مركز مرصد لجنة هيئة جيش قوات فصيل فصائل حركة لواء كتائب كتيبة مجلس وزارة حكومة نظام "
    "معارضة جبهة تنظيم منظمة اتحاد ائتلاف إذاعة قناة مجلة نشرة بوابة منصة تنسيقية".split()
)


@dataclass(frozen=True)
class Edit:
    """Replace text[start:end] by `text`."""

    start: int
    end: int
    text: str


class Rewrite:
    """A text with non-overlapping edits applied, and the map of old boundaries to new ones."""

    def __init__(self, text: str, edits: Sequence[Edit]) -> None:
        self.edits = sorted(edits, key=lambda e: (e.start, e.end))
        pieces, last = [], 0
        for edit in self.edits:
            pieces += [text[last : edit.start], edit.text]
            last = edit.end
        self.text = "".join(pieces) + text[last:]

    def position(self, offset: int) -> int:
        """Where a span boundary at `offset` lands: shifted by every edit that ends at or
        before it (an edit is never inside a span boundary: edits are whole mentions or
        characters within a word)."""
        return offset + sum(len(e.text) - (e.end - e.start) for e in self.edits if e.end <= offset)


def rewrite_example(nlp: Language, example: Example, edits: Sequence[Edit]) -> Example:
    """The example on the edited text, its entities, clauses and relations moved along."""
    ref = example.reference
    rewrite = Rewrite(ref.text, edits)
    new_ref = nlp.make_doc(rewrite.text)
    move = rewrite.position
    new_ref.ents = [_span(new_ref, move(e.start_char), move(e.end_char), e.label_) for e in ref.ents]
    for key, group in ref.spans.items():
        new_ref.spans[key] = [_span(new_ref, move(s.start_char), move(s.end_char), s.label_) for s in group]
    for key, value in ref.user_data.items():
        new_ref.user_data[key] = value
    relations = relations_of(ref)
    if relations is not None:
        new_ref._.relations = [
            {
                **rel,
                "head": {**rel["head"], "start": move(rel["head"]["start"]), "end": move(rel["head"]["end"])},
                "child": {**rel["child"], "start": move(rel["child"]["start"]), "end": move(rel["child"]["end"])},
            }
            for rel in relations
        ]
    return Example(nlp.make_doc(rewrite.text), new_ref)


def _span(doc: Doc, start: int, end: int, label: str) -> SpacySpan:
    span = doc.char_span(start, end, label=label, alignment_mode="expand")
    if span is None:  # pragma: no cover - expand mode only fails outside the text
        raise ValueError(f"span {start}-{end} is outside the rewritten text")
    return span


# --------------------------------------------------------------------------- gazetteers


@dataclass(frozen=True)
class Gazetteers:
    given: tuple[str, ...]
    family: tuple[str, ...]
    organisations: tuple[str, ...]
    places: tuple[str, ...]


def _lines(path: Path) -> tuple[str, ...]:
    return tuple(line.strip() for line in path.read_text(encoding="utf8").splitlines() if line.strip() and not line.startswith("#"))


def cldr_places() -> tuple[str, ...]:
    """Arabic names of countries and of cities (time-zone exemplar cities) from CLDR."""
    from babel import Locale

    arabic = Locale.parse("ar")
    countries = {name for code, name in arabic.territories.items() if len(code) == 2 and code.isalpha()}
    cities = {zone["city"] for zone in arabic.time_zones.values() if "city" in zone}
    return tuple(sorted(countries | cities))


@lru_cache(maxsize=4)
def load_gazetteers(folder: str) -> Gazetteers:
    """The name lists in `folder` plus CLDR's places (and the folder's places.txt, if any)."""
    root = Path(folder)
    extra_places = _lines(root / "places.txt") if (root / "places.txt").exists() else ()
    return Gazetteers(
        given=_lines(root / "given_names.txt"),
        family=_lines(root / "family_names.txt"),
        organisations=_lines(root / "organisations.txt"),
        places=tuple(sorted(set(cldr_places()) | set(extra_places))),
    )


# --------------------------------------------------------------------------- mention replacement


def name_like_tokens(docs: Sequence[Doc], min_count: int = 1, min_ratio: float = 0.9) -> frozenset[str]:
    """Token texts found mostly inside entities: names, as opposed to titles and common nouns."""
    inside: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for doc in docs:
        for token in doc:
            total[token.text] += 1
            if token.ent_iob_ in ("B", "I"):
                inside[token.text] += 1
    return frozenset(t for t, n in inside.items() if n >= min_count and n / total[t] >= min_ratio and not t.isdigit())


def _bare(word: str) -> str:
    """A word without a leading conjunction/preposition and article, to look it up."""
    if word[:1] in PROCLITICS and len(word) > 3:
        word = word[1:]
    return word[2:] if word.startswith("ال") and len(word) > 3 else word


def _trailing_names(span: SpacySpan, names: frozenset[str]) -> SpacySpan | None:
    """The longest run of name-like tokens that ends the mention (after titles, offices);
    None when the run holds a generic word (an anaphoric place, an organisation)."""
    start = span.end
    while start > span.start and span.doc[start - 1].text in names:
        start -= 1
    run = span.doc[start : span.end]
    if not len(run) or any(_bare(token.text) in GENERIC_WORDS for token in run):
        return None
    return run


def _proclitic(text: str, names: frozenset[str]) -> str:
    """A conjunction or preposition glued to the first word («وحمص»), kept in the
    replacement; only when the rest is itself a name, so «كريم» keeps its kaf."""
    first = text.split(" ", 1)[0]
    return first[0] if first[:1] in PROCLITICS and first[1:] in names else ""


def mention_edits(doc: Doc, names: frozenset[str], gaz: Gazetteers, rng: random.Random, level: float) -> list[Edit]:
    """Replacements for the person and place names of a doc, each mention with probability `level`.

    The same name is replaced by the same new name throughout the doc, so coreference in
    an article stays consistent."""
    chosen: dict[str, str] = {}
    edits = []
    organisations = frozenset(gaz.organisations)
    for ent in doc.ents:
        if ent.label_ not in ("ACTOR", "PLACE"):
            continue
        if ent.label_ == "ACTOR" and (ent.text in organisations or ent.text[1:] in organisations):
            if rng.random() < level:
                clitic = ent.text[0] if ent.text not in organisations else ""
                edits.append(Edit(ent.start_char, ent.end_char, clitic + rng.choice(gaz.organisations)))
            continue
        run = _trailing_names(ent, names)
        if run is None or (ent.label_ == "ACTOR" and len(run) < 2):
            continue  # a single name-like word as actor is more often an organisation than a person
        key = run.text
        if key not in chosen:
            if rng.random() >= level:
                chosen[key] = ""
                continue
            chosen[key] = _new_name(ent.label_, len(run), gaz, rng)
        if chosen[key]:
            edits.append(Edit(run.start_char, run.end_char, _proclitic(run.text, names) + chosen[key]))
    return edits


def _new_name(label: str, length: int, gaz: Gazetteers, rng: random.Random) -> str:
    if label == "PLACE":
        return rng.choice(gaz.places)
    given = [rng.choice(gaz.given) for _ in range(max(1, length - 1))]
    return " ".join([*given, rng.choice(gaz.family)])


# --------------------------------------------------------------------------- orthographic variants

ARABIC_DIGITS = "٠١٢٣٤٥٦٧٨٩"
_VARIANTS: dict[str, Callable[[str], str]] = {
    "hamza": lambda t: re.sub("[أإآ]", "ا", t),
    "taa_marbuta": lambda t: re.sub("ة(?=\\s|$)", "ه", t),
    "alef_maqsura": lambda t: re.sub("ى(?=\\s|$)", "ي", t),
    "arabic_digits": lambda t: t.translate(str.maketrans("0123456789", ARABIC_DIGITS)),
    "western_digits": lambda t: t.translate(str.maketrans(ARABIC_DIGITS, "0123456789")),
}


def orthographic_edits(text: str, variant: str) -> list[Edit]:
    """Character edits for one variant; each keeps the text's length, so no span moves."""
    new = _VARIANTS[variant](text)
    return [Edit(i, i + 1, b) for i, (a, b) in enumerate(zip(text, new)) if a != b]


@registry.augmenters("homs_ner.names_and_spellings.v1")
def create_augmenter(
    mention_level: float, spelling_level: float, gazetteers: str, names_from: str, seed: int = 0
) -> Callable[[Language, Example], Iterator[Example]]:
    """Yield each example, then with probability `mention_level` a copy with new person and
    place names, and with probability `spelling_level` a copy in another spelling variant.

    `names_from`: the training DocBin, from which the name-like tokens are counted once."""
    from spacy.tokens import DocBin

    rng = random.Random(seed)
    gaz = load_gazetteers(gazetteers)
    names: list[frozenset[str]] = []

    def augment(nlp: Language, example: Example) -> Iterator[Example]:
        if not names:
            names.append(name_like_tokens(list(DocBin().from_disk(names_from).get_docs(nlp.vocab))))
        yield example
        if mention_level and rng.random() < mention_level:
            edits = mention_edits(example.reference, names[0], gaz, rng, level=0.8)
            if edits:
                yield rewrite_example(nlp, example, edits)
        if spelling_level and rng.random() < spelling_level:
            edits = orthographic_edits(example.reference.text, rng.choice(sorted(_VARIANTS)))
            if edits:
                yield rewrite_example(nlp, example, edits)

    return augment
