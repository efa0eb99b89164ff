"""The relation extractor (factory `relation_extractor`): directed, multi-label relations
between entities and clauses, written to `doc._.relations` in the layout of
`homs_ner.data.conversion`.

As spaCy's own components: the pipe here, its model apart (`homs_ner.RelationModel.v1` in
`homs_ner.ml.relation_model`), its scorer registered (`homs_ner.relation_scorer.v1`) and its
candidate generator registered (`homs_ner.relation_candidates.v1`, like spancat's
suggester), both named in the factory's default config. All are declared as entry points
in pyproject.toml, so a trained pipeline loads with plain `spacy.load` and no
`import homs_ner`.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.scorer import PRFScore
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import registry
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate
from thinc.types import Floats2d

from homs_ner.data.schema import Schema, load_schema
from homs_ner.ml.relation_model import PairBatch
from homs_ner.pipeline.relation_candidates import (
    Candidate,
    CandidateGenerator,
    RelationSchema,
    SpanRef,
    aligned_span_refs,
    find_candidates,
    gold_relations,
    make_pair_batch,
    span_refs,
)

DEFAULT_RELATION_MODEL = Config().from_str(
    """
[model]
@architectures = "homs_ner.RelationModel.v1"
hidden_width = 128

[model.tok2vec]
@architectures = "spacy.Tok2Vec.v2"

[model.tok2vec.embed]
@architectures = "spacy.MultiHashEmbed.v2"
width = 96
rows = [5000, 1000, 2500, 2500]
attrs = ["NORM", "PREFIX", "SUFFIX", "SHAPE"]
include_static_vectors = false

[model.tok2vec.encode]
@architectures = "spacy.MaxoutWindowEncoder.v2"
width = 96
depth = 4
window_size = 1
maxout_pieces = 3
"""
)["model"]


@Language.factory(
    "relation_extractor",
    requires=["doc.ents", "doc.spans"],
    assigns=["doc._.relations"],
    default_config={
        "model": DEFAULT_RELATION_MODEL,
        "threshold": 0.5,
        "max_distance": 60,
        "predicted_spans": False,
        "candidates": {"@misc": "homs_ner.relation_candidates.v1"},
        "scorer": {"@scorers": "homs_ner.relation_scorer.v1"},
    },
    default_score_weights={"rel_micro_f": 1.0, "rel_micro_p": 0.0, "rel_micro_r": 0.0, "rel_per_type": None},
)
def make_relation_extractor(
    nlp: Language,
    name: str,
    model: Model[PairBatch, Floats2d],
    threshold: float,
    max_distance: int,
    predicted_spans: bool,
    candidates: CandidateGenerator,
    scorer: Callable[..., dict[str, Any]],
) -> "RelationExtractor":
    """Construct the relation extractor; its labels come from the schema at initialization.

    `predicted_spans`: also learn from pairs among the entities and clauses the upstream
    components predicted during training (list them in `[training] annotating_components`),
    so that the model sees, as negatives, the badly bounded or mistyped spans it will meet
    end to end.
    """
    return RelationExtractor(
        nlp.vocab,
        model,
        name,
        threshold=threshold,
        max_distance=max_distance,
        predicted_spans=predicted_spans,
        candidates=candidates,
        scorer=scorer,
    )


class RelationExtractor(TrainablePipe):
    """Directed, multi-label relations between entities and clauses (see the module doc)."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model[PairBatch, Floats2d],
        name: str = "relation_extractor",
        *,
        threshold: float = 0.5,
        max_distance: int = 60,
        predicted_spans: bool = False,
        candidates: CandidateGenerator = find_candidates,
        scorer: Callable[..., dict[str, Any]] | None = None,
    ) -> None:
        self.vocab = vocab
        self.model = model
        self.name = name
        self.candidates = candidates
        self.scorer = scorer if scorer is not None else score_relations
        self.cfg: dict[str, Any] = {"threshold": threshold, "max_distance": max_distance, "schema": None}
        self.predicted_spans = predicted_spans

    # -- labels --------------------------------------------------------------------------

    @property
    def rschema(self) -> "RelationSchema":
        if not self.cfg.get("schema"):
            raise ValueError(f"{self.name}: no labels yet; initialize it (or run homs_ner.add_schema_labels.v1)")
        return RelationSchema.from_cfg(self.cfg["schema"])

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.cfg["schema"]["labels"]) if self.cfg.get("schema") else ()

    @property
    def label_data(self) -> list[str]:
        return list(self.labels)

    def set_schema(self, schema: Schema, labels: Sequence[str] | None = None) -> None:
        """Take labels, allowed pairs, kinds and the clause group from the label schema."""
        self.cfg["schema"] = RelationSchema.from_schema(schema, labels).to_cfg()

    # -- prediction ----------------------------------------------------------------------

    def _pairs(
        self, docs: Sequence[Doc], spans: Sequence[Sequence[SpanRef]]
    ) -> tuple[list[list[Candidate]], PairBatch]:
        """Each doc's candidates among its `spans`, and the model input for all of them."""
        rschema = self.rschema
        candidates = [
            self.candidates(doc, doc_spans, rschema.kind_pairs, self.cfg["max_distance"])
            for doc, doc_spans in zip(docs, spans)
        ]
        return candidates, make_pair_batch(docs, candidates, rschema.kinds)

    def predict(self, docs: Iterable[Doc]) -> tuple[list[list[Candidate]], Floats2d]:
        docs = list(docs)
        rschema = self.rschema
        candidates, batch = self._pairs(docs, [span_refs(doc, rschema) for doc in docs])
        if not any(len(doc) for doc in docs):
            return candidates, self.model.ops.alloc2f(0, len(rschema.labels))
        return candidates, self.model.ops.to_numpy(self.model.predict(batch))

    def set_annotations(self, docs: Iterable[Doc], predictions: tuple[list[list[Candidate]], Floats2d]) -> None:
        """Write the relations the schema allows and that pass their label's threshold (tuned
        per label on dev by `homs_ner.pipeline.relation_thresholds`, else `threshold`), with
        their score."""
        candidates, scores = predictions
        rschema = self.rschema
        per_label = self.cfg.get("thresholds") or {}
        thresholds = [per_label.get(label, self.cfg["threshold"]) for label in rschema.labels]
        row = 0
        for doc, doc_candidates in zip(docs, candidates):
            relations = []
            for cand in doc_candidates:
                allowed = rschema.label_mask(cand.head.kind, cand.child.kind)
                for label, ok, score, threshold in zip(rschema.labels, allowed, scores[row], thresholds):
                    if ok and score >= threshold:
                        ref = {"head": cand.head.ref, "child": cand.child.ref, "label": label}
                        relations.append({**ref, "score": float(score)})
                row += 1
            doc._.relations = relations

    # -- training ------------------------------------------------------------------------

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optimizer | None = None,
        losses: dict[str, float] | None = None,
    ) -> dict[str, float]:
        """Learn from candidates built on the gold spans.

        The model runs and backpropagates even when the batch has no candidate: as the last
        listener of a shared tok2vec/transformer, this component is the one that passes the
        other components' accumulated gradients upstream.
        """
        losses = {} if losses is None else losses
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "RelationExtractor.update")
        if not any(len(eg.predicted) for eg in examples):
            return losses
        candidates, batch = self._gold_pairs(examples)
        set_dropout_rate(self.model, drop)
        scores, backprop = self.model.begin_update(batch)
        loss, d_scores = self.get_loss(examples, (candidates, scores))
        backprop(d_scores)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def _gold_pairs(self, examples: Sequence[Example]) -> tuple[list[list[Candidate]], PairBatch]:
        """Candidates among the reference's gold spans, on the predicted docs' tokens, and
        with `predicted_spans` also among the spans predicted so far (each span once)."""
        rschema = self.rschema
        spans = [aligned_span_refs(eg, rschema) for eg in examples]
        if self.predicted_spans:
            spans = [_union(gold, span_refs(eg.predicted, rschema)) for gold, eg in zip(spans, examples)]
        return self._pairs([eg.predicted for eg in examples], spans)

    def get_loss(
        self, examples: Iterable[Example], predictions: tuple[list[list[Candidate]], Floats2d]
    ) -> tuple[float, Floats2d]:
        """Squared error against the gold labels, on the labels the schema allows for each
        pair and on docs whose relations were annotated (None means not annotated)."""
        candidates, scores = predictions
        truth, mask = self._truth(list(examples), candidates)
        d_scores = (scores - self.model.ops.asarray2f(truth)) * self.model.ops.asarray2f(mask)
        return float((d_scores**2).sum()), d_scores

    def _truth(
        self, examples: Sequence[Example], candidates: Sequence[Sequence[Candidate]]
    ) -> tuple[Floats2d, Floats2d]:
        """Gold label matrix and loss mask, one row per candidate."""
        rschema = self.rschema
        truth, mask = [], []
        for eg, doc_candidates in zip(examples, candidates):
            annotated = float(eg.reference._.relations is not None)
            gold = gold_relations(eg.reference)
            for cand in doc_candidates:
                labels = gold.get(cand.key, set())
                truth.append([float(label in labels) for label in rschema.labels])
                mask.append([annotated * m for m in rschema.label_mask(cand.head.kind, cand.child.kind)])
        shape = (len(truth), len(rschema.labels))
        return (
            numpy.asarray(truth, dtype="float32").reshape(shape),
            numpy.asarray(mask, dtype="float32").reshape(shape),
        )

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Language | None = None,
        labels: Sequence[str] | None = None,
        schema_path: str | Path | None = None,
    ) -> None:
        """Take the labels from `schema_path` (or keep those the `add_schema_labels` callback
        has set) and size the model on a sample.

        `labels` (as `spacy init labels` writes them) keeps only those schema relations. There
        is no default schema: a pipeline trained outside this repository names its own.
        """
        validate_get_examples(get_examples, "RelationExtractor.initialize")
        if schema_path is not None:
            self.set_schema(load_schema(schema_path), labels)
        elif not self.labels:
            raise ValueError(
                f"{self.name}: no label schema. Give [initialize.components.{self.name}] schema_path, "
                "run homs_ner.add_schema_labels.v1 in [initialize.before_init], or call set_schema() first"
            )
        elif labels is not None:
            self.cfg["schema"] = self.rschema.restrict(labels).to_cfg()
        sample = list(islice(get_examples(), 10))
        candidates, batch = self._gold_pairs(sample)
        truth, _ = self._truth(sample, candidates)
        self.model.initialize(X=batch, Y=self.model.ops.asarray2f(truth))


def _union(first: Sequence[SpanRef], second: Sequence[SpanRef]) -> list[SpanRef]:
    """`first`, then the spans of `second` not in it (same offsets, kind and label)."""
    seen = set(first)
    return [*first, *(ref for ref in second if ref not in seen)]


def score_relations(examples: Iterable[Example], **kwargs: Any) -> dict[str, Any]:
    """Micro and per-label P/R/F of exact relations (both spans' offsets and labels, and the
    relation label), over docs whose reference relations were annotated."""
    per_label: dict[str, PRFScore] = defaultdict(PRFScore)
    for eg in examples:
        if eg.reference._.relations is None:
            continue
        gold, pred = _relation_set(eg.reference), _relation_set(eg.predicted)
        for key in gold | pred:
            score = per_label[key[-1]]
            if key in gold and key in pred:
                score.tp += 1
            elif key in pred:
                score.fp += 1
            else:
                score.fn += 1
    micro = PRFScore()
    for score in per_label.values():
        micro += score
    return {
        "rel_micro_p": micro.precision,
        "rel_micro_r": micro.recall,
        "rel_micro_f": micro.fscore,
        "rel_per_type": {label: score.to_dict() for label, score in sorted(per_label.items())},
    }


def _relation_set(doc: Doc) -> set[tuple]:
    return {key + (label,) for key, labels in gold_relations(doc).items() for label in labels}


@registry.scorers("homs_ner.relation_scorer.v1")
def make_relation_scorer() -> Callable[..., dict[str, Any]]:
    """The relation extractor's scorer, named in its default config as spaCy's pipes name
    theirs (`Pipe.score` calls it with the examples and the component's cfg)."""
    return score_relations
