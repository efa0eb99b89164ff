"""The clause typer: spaCy's single-label span categorizer, trained on the gold clauses.

At prediction it labels the spans `clause_tagger` found (preset suggester) and drops those
it gives the negative label. In training it scores the gold clauses (aligned to the
predicted tokens) instead of its suggester's proposals. Why: the type is a property of the
whole clause, not of each token, and learning it from gold spans keeps the typer from
learning that every early, badly bounded proposal of the tagger is "no clause".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy
from spacy.language import Language
from spacy.pipeline.spancat import SpanCategorizer, Suggester
from spacy.tokens import Doc
from spacy.training import Example, validate_examples
from thinc.api import Model, Optimizer, set_dropout_rate
from thinc.types import Floats2d, Ragged

from .clause_tagger import DEFAULT_TAGGER_MODEL


@Language.factory(
    "clause_classifier",
    assigns=["doc.spans"],
    default_config={
        "suggester": {"@misc": "spacy.preset_spans_suggester.v1", "spans_key": "clauses"},
        "model": {
            "@architectures": "spacy.SpanCategorizer.v1",
            "scorer": {"@layers": "Softmax.v2"},
            "reducer": {"@layers": "spacy.mean_max_reducer.v1", "hidden_size": 128},
            "tok2vec": DEFAULT_TAGGER_MODEL["tok2vec"],
        },
        "spans_key": "clauses",
        "negative_weight": 1.0,
        "allow_overlap": False,
        "scorer": {"@scorers": "spacy.spancat_scorer.v1"},
    },
    default_score_weights={"spans_clauses_f": 1.0, "spans_clauses_p": 0.0, "spans_clauses_r": 0.0},
)
def make_clause_classifier(
    nlp: Language,
    name: str,
    suggester: Suggester,
    model: Model[tuple[list[Doc], Ragged], Floats2d],
    spans_key: str,
    negative_weight: float,
    allow_overlap: bool,
    scorer: Callable | None,
) -> "GoldSpanCategorizer":
    """Construct the clause typer: spancat_singlelabel's settings, trained on gold spans."""
    return GoldSpanCategorizer(
        nlp.vocab,
        model=model,
        suggester=suggester,
        name=name,
        spans_key=spans_key,
        negative_weight=negative_weight,
        allow_overlap=allow_overlap,
        max_positive=1,
        add_negative_label=True,
        threshold=None,
        scorer=scorer,
    )


class GoldSpanCategorizer(SpanCategorizer):
    """A single-label span categorizer that learns from the gold spans, not its suggestions."""

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optimizer | None = None,
        losses: dict[str, float] | None = None,
    ) -> dict[str, float]:
        """As `SpanCategorizer.update`, with the gold spans (on the predicted tokens) as the
        spans to score. A batch without clauses is skipped: this pipe is not the shared
        tok2vec's last listener, so skipping only adds no gradient of its own."""
        losses = {} if losses is None else losses
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "GoldSpanCategorizer.update")
        if not any(len(eg.predicted) for eg in examples):
            return losses
        spans = self._gold_ragged(examples)
        if not spans.lengths.sum():
            return losses
        set_dropout_rate(self.model, drop)
        scores, backprop_scores = self.model.begin_update(([eg.predicted for eg in examples], spans))
        loss, d_scores = self.get_loss(examples, (spans, scores))
        backprop_scores(d_scores)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def _gold_ragged(self, examples: Sequence[Example]) -> Ragged:
        """Each example's gold spans as (start, end) rows on its predicted doc."""
        rows, lengths = [], []
        for eg in examples:
            aligned = self._get_aligned_spans(eg)
            rows += [(span.start, span.end) for span in aligned]
            lengths.append(len(aligned))
        ops = self.model.ops
        data = numpy.asarray(rows, dtype="int32").reshape(-1, 2)
        return Ragged(ops.asarray2i(data), ops.asarray1i(numpy.asarray(lengths, dtype="int32")))

