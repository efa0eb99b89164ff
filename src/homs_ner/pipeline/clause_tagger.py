"""Agreement clauses as sequence labelling: where the clauses are (this module), then what
type each is (`clause_classifier`).

Two components replace span proposal (`span_finder` + `spancat_singlelabel`):

- factory `clause_tagger` (here): an untyped BILUO tagger over the shared token vectors. Its
  softmax scores are decoded with a constrained Viterbi pass (only valid BILUO sequences, no
  clause across a paragraph break) into unlabelled spans under `doc.spans[spans_key]`.
  Why: clauses are long (median 6, up to 28 words) and a span finder has to get both ends
  right independently; a tagger decides token by token with the whole sentence in its
  features. A measured spike (`../shared/reference/clause_tagger/`) found about twice the
  clauses the span finder found on unseen news.
- factory `clause_classifier` (`homs_ner.pipeline.clause_classifier`): spaCy's single-label span categorizer, trained on the gold
  clauses (aligned to the predicted tokens) instead of on its suggester's proposals, and at
  prediction labelling the tagger's spans (preset suggester). Why: the type is a property of
  the whole clause, not of each token, and learning it from gold spans keeps the typer from
  learning that every early, badly bounded proposal is "no clause".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from typing import Any

import numpy
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.pipeline.span_finder import span_finder_score
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, SequenceCategoricalCrossentropy, set_dropout_rate
from thinc.types import Floats2d

TAGS: tuple[str, ...] = ("O", "B", "I", "L", "U")
"""Untyped BILUO tags, in the order of the model's output columns."""

O, B, I, L, U = range(len(TAGS))
# ALLOWED[prev, next]: BILUO's grammar. A clause opened by B continues with I or ends with L.
_ALLOWED = numpy.zeros((len(TAGS), len(TAGS)), dtype=bool)
for _prev in (O, L, U):
    _ALLOWED[_prev, [O, B, U]] = True
for _prev in (B, I):
    _ALLOWED[_prev, [I, L]] = True
_STARTS = numpy.array([True, True, False, False, True])  # a doc or paragraph opens with O, B or U
_ENDS = numpy.array([True, False, False, True, True])  # ... and closes with O, L or U


def biluo_tags(n_tokens: int, spans: Iterable[tuple[int, int]]) -> list[str]:
    """The BILUO tag of every token, given non-overlapping (start, end) token spans."""
    tags = ["O"] * n_tokens
    for start, end in spans:
        if end - start == 1:
            tags[start] = "U"
            continue
        tags[start] = "B"
        for i in range(start + 1, end - 1):
            tags[i] = "I"
        tags[end - 1] = "L"
    return tags


def viterbi(log_probs: Floats2d, breaks: Sequence[bool]) -> list[int]:
    """The most probable valid BILUO tag sequence.

    `breaks[i]` marks a paragraph-break token: it must be O, so no clause crosses it.
    """
    n = len(log_probs)
    if n == 0:
        return []
    scores = numpy.asarray(log_probs, dtype="float64").copy()
    blocked = numpy.array(breaks, dtype=bool)
    scores[blocked, 1:] = -numpy.inf
    transition = numpy.where(_ALLOWED, 0.0, -numpy.inf)
    best = numpy.where(_STARTS, scores[0], -numpy.inf)
    back = numpy.zeros((n, len(TAGS)), dtype="int64")
    for i in range(1, n):
        total = best[:, None] + transition  # [prev, next]
        back[i] = total.argmax(axis=0)
        best = total.max(axis=0) + scores[i]
    best = numpy.where(_ENDS, best, -numpy.inf)
    path = [int(best.argmax())]
    for i in range(n - 1, 0, -1):
        path.append(int(back[i, path[-1]]))
    return path[::-1]


def tags_to_spans(path: Sequence[int]) -> list[tuple[int, int]]:
    """(start, end) token spans of a valid BILUO tag sequence."""
    spans, start = [], 0
    for i, tag in enumerate(path):
        if tag == U:
            spans.append((i, i + 1))
        elif tag == B:
            start = i
        elif tag == L:
            spans.append((start, i + 1))
    return spans


def paragraph_breaks(doc: Doc) -> list[bool]:
    """Whitespace tokens holding a newline: the paragraph boundaries clauses never cross."""
    return [token.is_space and "\n" in token.text for token in doc]


DEFAULT_TAGGER_MODEL = Config().from_str(
    """
[model]
@architectures = "spacy.Tagger.v2"
nO = null
normalize = false

[model.tok2vec]
@architectures = "spacy.HashEmbedCNN.v2"
pretrained_vectors = null
width = 96
depth = 4
embed_size = 2000
window_size = 1
maxout_pieces = 3
subword_features = true
"""
)["model"]


@Language.factory(
    "clause_tagger",
    assigns=["doc.spans"],
    default_config={
        "model": DEFAULT_TAGGER_MODEL,
        "spans_key": "clauses",
        "scorer": {"@scorers": "spacy.span_finder_scorer.v1"},
    },
    default_score_weights={"spans_clauses_f": None, "spans_clauses_p": None, "spans_clauses_r": None},
)
def make_clause_tagger(
    nlp: Language, name: str, model: Model[list[Doc], list[Floats2d]], spans_key: str, scorer: Callable | None
) -> "ClauseTagger":
    """Construct the untyped clause tagger (see the module doc)."""
    return ClauseTagger(nlp.vocab, model, name, spans_key=spans_key, scorer=scorer)


class ClauseTagger(TrainablePipe):
    """Untyped BILUO tagging of agreement clauses into `doc.spans[spans_key]`."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model[list[Doc], list[Floats2d]],
        name: str = "clause_tagger",
        *,
        spans_key: str = "clauses",
        scorer: Callable | None = span_finder_score,
    ) -> None:
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg: dict[str, Any] = {"spans_key": spans_key}

    @property
    def labels(self) -> tuple[str, ...]:
        return TAGS

    @property
    def label_data(self) -> list[str]:
        return list(TAGS)

    def predict(self, docs: Iterable[Doc]) -> list[list[tuple[int, int]]]:
        docs = list(docs)
        if not any(len(doc) for doc in docs):
            return [[] for _ in docs]
        scores = self.model.predict(docs)
        spans = []
        for doc, doc_scores in zip(docs, scores):
            log_probs = numpy.log(numpy.clip(self.model.ops.to_numpy(doc_scores), 1e-9, 1.0))
            spans.append(tags_to_spans(viterbi(log_probs, paragraph_breaks(doc))))
        return spans

    def set_annotations(self, docs: Iterable[Doc], spans: list[list[tuple[int, int]]]) -> None:
        """Unlabelled spans; the clause classifier gives them their type."""
        key = self.cfg["spans_key"]
        for doc, doc_spans in zip(docs, spans):
            doc.spans[key] = [doc[start:end] for start, end in doc_spans]

    def _gold_tags(self, eg: Example) -> list[str]:
        """Gold BILUO tags on the predicted doc's tokens (gold clauses aligned by characters)."""
        gold = eg.reference.spans.get(self.cfg["spans_key"], [])
        aligned = eg.get_aligned_spans_y2x(gold, allow_overlap=False)
        return biluo_tags(len(eg.predicted), [(span.start, span.end) for span in aligned])

    def get_loss(self, examples: Iterable[Example], scores: list[Floats2d]) -> tuple[float, list[Floats2d]]:
        loss_func = SequenceCategoricalCrossentropy(names=TAGS, normalize=False)
        truths = [self._gold_tags(eg) for eg in examples]
        d_scores, loss = loss_func(scores, truths)
        return float(loss), d_scores

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optimizer | None = None,
        losses: dict[str, float] | None = None,
    ) -> dict[str, float]:
        losses = {} if losses is None else losses
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "ClauseTagger.update")
        if not any(len(eg.predicted) for eg in examples):
            return losses
        set_dropout_rate(self.model, drop)
        scores, backprop = self.model.begin_update([eg.predicted for eg in examples])
        loss, d_scores = self.get_loss(examples, scores)
        backprop(d_scores)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp: Language | None = None) -> None:
        """Size the output layer to the five tags and initialize on a sample."""
        validate_get_examples(get_examples, "ClauseTagger.initialize")
        sample = list(islice(get_examples(), 10))
        docs = [eg.predicted for eg in sample]
        truths = [numpy.eye(len(TAGS), dtype="float32")[[TAGS.index(t) for t in self._gold_tags(eg)]] for eg in sample]
        self.model.initialize(X=docs, Y=[self.model.ops.asarray2f(t) for t in truths])
