"""The project's own trainable pieces: the relation extractor, its model, the span finder's
boundary scorer, and the callback that gives every component its labels from
`configs/labels.yml`.

Registered names (also declared as entry points in pyproject.toml, so a trained pipeline
loads with plain `spacy.load` and no `import homs_ner`):

- factory `relation_extractor`: reads `doc.ents` and `doc.spans[<span_group>]`, writes
  `doc._.relations` in the layout of `homs_ner.conversion`;
- architecture `homs_ner.RelationModel.v1`: tok2vec -> mean-pooled head and child vectors +
  pair features -> ReLU -> Linear + Logistic, one independent score per relation label;
- layer `homs_ner.BoundaryScorer.v1`: the span finder's start/end scorer with a prior;
- architecture `homs_ner.TransformerFeatures.v1`: a trainable view of the frozen shared
  transformer (its listener, optionally with hash-embedded spelling features);
- callback `homs_ner.add_schema_labels.v1`: `[initialize.before_init]`, adds the schema's
  labels to `ner`, the clause categorizer and `relation_extractor`.

Candidates are ordered pairs (head, child) of entities and clauses whose kinds some relation
allows, in the same paragraph and at most `max_distance` tokens apart. The pipe, not the
model, builds them: in training from the reference doc's gold spans (so the relation model
learns from clean spans even while `ner` and the clause categorizer are still poor), at
prediction from the doc's own entities and clauses.
"""

import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

import numpy
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.scorer import PRFScore
from spacy.tokens import Doc
from spacy.tokens import Span as SpacySpan
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import registry
from spacy.vocab import Vocab
from thinc.api import (
    Config,
    LayerNorm,
    Linear,
    Logistic,
    Maxout,
    Model,
    Ops,
    Optimizer,
    Relu,
    chain,
    concatenate,
    glorot_uniform_init,
    set_dropout_rate,
    with_array,
)
from thinc.layers.chain import forward as chain_forward, init as chain_init
from thinc.types import Floats1d, Floats2d, Ints1d

from .conversion import relations_of
from .schema import CLAUSE_KIND, Schema, load_schema

DISTANCE_BUCKETS = (1, 3, 6, 11, 21, 41)
"""Lower bounds of the distance buckets after 0: 0 | 1-2 | 3-5 | 6-10 | 11-20 | 21-40 | 41+.
Roughly logarithmic: a word more matters inside a phrase, not across half a paragraph."""

SPAN_CATEGORIZERS = frozenset({"spancat", "spancat_singlelabel"})

# --------------------------------------------------------------------------- schema view


@dataclass(frozen=True)
class RelationSchema:
    """What the relation extractor needs from the label schema, in a form that lives in the
    component's cfg, so a trained pipeline needs no schema file to run."""

    labels: tuple[str, ...]
    pairs: dict[str, frozenset[tuple[str, str]]]
    kinds: tuple[str, ...]
    clause_prefix: str
    spans_key: str

    @classmethod
    def from_schema(cls, schema: Schema, labels: Sequence[str] | None = None) -> "RelationSchema":
        """The schema's relations, or only `labels` of them (each must be in the schema)."""
        chosen = list(labels) if labels is not None else schema.relation_labels
        unknown = sorted(set(chosen) - set(schema.relation_labels))
        if unknown:
            raise ValueError(f"relation labels {unknown} are not in the schema {schema.path}")
        by_name = {r.name: r for r in schema.relations}
        return cls(
            labels=tuple(chosen),
            pairs={name: frozenset(by_name[name].pairs) for name in chosen},
            kinds=(*schema.entity_labels, CLAUSE_KIND),
            clause_prefix=schema.doccano_prefix,
            spans_key=schema.span_group,
        )

    @classmethod
    def from_cfg(cls, cfg: dict[str, Any]) -> "RelationSchema":
        return cls(
            labels=tuple(cfg["labels"]),
            pairs={label: frozenset(tuple(p) for p in pairs) for label, pairs in cfg["pairs"].items()},
            kinds=tuple(cfg["kinds"]),
            clause_prefix=cfg["clause_prefix"],
            spans_key=cfg["spans_key"],
        )

    def to_cfg(self) -> dict[str, Any]:
        """JSON-ready: what `TrainablePipe.to_disk` writes into the component's cfg."""
        return {
            "labels": list(self.labels),
            "pairs": {label: sorted(map(list, pairs)) for label, pairs in self.pairs.items()},
            "kinds": list(self.kinds),
            "clause_prefix": self.clause_prefix,
            "spans_key": self.spans_key,
        }

    @property
    def kind_pairs(self) -> frozenset[tuple[str, str]]:
        """(head kind, child kind) pairs some label allows: the only pairs worth scoring."""
        return frozenset(p for pairs in self.pairs.values() for p in pairs)

    def label_mask(self, head_kind: str, child_kind: str) -> list[float]:
        """1.0 for the labels the schema allows between these kinds, else 0.0."""
        return [float((head_kind, child_kind) in self.pairs[label]) for label in self.labels]


# --------------------------------------------------------------------------- candidates


@dataclass(frozen=True)
class SpanRef:
    """An entity or clause as the relation model sees it.

    `start`/`end` are token offsets on the doc the model reads; `start_char`/`end_char` and
    `label` (Doccano style: ACTOR, CLAUSE:EVACUATION) identify it in `doc._.relations`.
    """

    start: int
    end: int
    start_char: int
    end_char: int
    kind: str
    label: str

    @property
    def ref(self) -> dict[str, Any]:
        return {"start": self.start_char, "end": self.end_char, "label": self.label}


@dataclass(frozen=True)
class Candidate:
    """An ordered (head, child) pair the model scores."""

    head: SpanRef
    child: SpanRef
    distance: int
    contains: bool

    @property
    def key(self) -> tuple:
        """The pair's identity in `doc._.relations`: character offsets and span labels."""
        h, c = self.head, self.child
        return (h.start_char, h.end_char, h.label, c.start_char, c.end_char, c.label)


def span_refs(doc: Doc, rschema: RelationSchema) -> list[SpanRef]:
    """The doc's entities and clauses whose kind the schema knows."""
    refs = [_ref(span, span.label_, span.label_) for span in doc.ents]
    clauses = doc.spans.get(rschema.spans_key, [])
    refs += [_ref(span, CLAUSE_KIND, rschema.clause_prefix + span.label_) for span in clauses]
    return [r for r in refs if r.kind in rschema.kinds]


def aligned_span_refs(eg: Example, rschema: RelationSchema) -> list[SpanRef]:
    """The reference doc's gold entities and clauses, placed on the predicted doc's tokens.

    The character offsets (and so the gold relation keys) stay the reference's; the token
    offsets are the predicted doc's, which the model reads.
    """
    refs = []
    for gold in span_refs(eg.reference, rschema):
        span = eg.predicted.char_span(gold.start_char, gold.end_char, alignment_mode="expand")
        if span is not None:
            refs.append(SpanRef(span.start, span.end, gold.start_char, gold.end_char, gold.kind, gold.label))
    return refs


def _ref(span: SpacySpan, kind: str, label: str) -> SpanRef:
    return SpanRef(span.start, span.end, span.start_char, span.end_char, kind, label)


def _newline_prefix(doc: Doc) -> Ints1d:
    """prefix[i] = number of newline tokens before token i: paragraph breaks in O(1)."""
    breaks = [("\n" in token.text) for token in doc]
    return numpy.concatenate(([0], numpy.cumsum(breaks, dtype="int32"))).astype("int32")


def find_candidates(
    doc: Doc,
    spans: Sequence[SpanRef],
    kind_pairs: frozenset[tuple[str, str]],
    max_distance: int,
) -> list[Candidate]:
    """Ordered pairs of distinct spans with an allowed (head kind, child kind), no newline
    token between them and at most `max_distance` tokens between them (0 when they overlap,
    e.g. a clause containing its actor). Relations in this corpus do not cross paragraphs,
    and the limits keep an article's quadratic number of pairs small."""
    newlines = _newline_prefix(doc)
    candidates = []
    for head in spans:
        for child in spans:
            if head == child or (head.kind, child.kind) not in kind_pairs:
                continue
            gap_start, gap_end = min(head.end, child.end), max(head.start, child.start)
            distance = max(0, gap_end - gap_start)
            if distance > max_distance or (distance and newlines[gap_end] - newlines[gap_start]):
                continue
            contains = _contains(head, child) or _contains(child, head)
            candidates.append(Candidate(head, child, distance, contains))
    return candidates


def _contains(outer: SpanRef, inner: SpanRef) -> bool:
    return outer.start <= inner.start and inner.end <= outer.end


def pair_features(candidates: Sequence[Candidate], kinds: Sequence[str]) -> Floats2d:
    """Cheap pair features: head kind and child kind one-hot, containment, head first,
    distance bucket one-hot. They tell the model what the pooled vectors cannot: how the two
    spans sit relative to each other."""
    index = {kind: i for i, kind in enumerate(kinds)}
    n_kinds = len(kinds)
    width = 2 * n_kinds + 2 + len(DISTANCE_BUCKETS) + 1
    features = numpy.zeros((len(candidates), width), dtype="float32")
    for row, cand in enumerate(candidates):
        features[row, index[cand.head.kind]] = 1.0
        features[row, n_kinds + index[cand.child.kind]] = 1.0
        features[row, 2 * n_kinds] = float(cand.contains)
        features[row, 2 * n_kinds + 1] = float(cand.head.start <= cand.child.start)
        features[row, 2 * n_kinds + 2 + bisect_right(DISTANCE_BUCKETS, cand.distance)] = 1.0
    return features


def gold_relations(doc: Doc) -> dict[tuple, set[str]]:
    """The doc's relations as {pair key: labels}, keyed like `Candidate.key`."""
    gold: dict[tuple, set[str]] = defaultdict(set)
    for rel in relations_of(doc):
        h, c = rel["head"], rel["child"]
        gold[(h["start"], h["end"], h["label"], c["start"], c["end"], c["label"])].add(rel["label"])
    return gold


# --------------------------------------------------------------------------- model


class PairBatch(NamedTuple):
    """The relation model's input: the docs (for the tok2vec) and, per candidate, its doc
    index, head and child token ranges, and pair features."""

    docs: list[Doc]
    heads: list[tuple[int, int, int]]
    children: list[tuple[int, int, int]]
    features: Floats2d


def make_pair_batch(
    docs: Sequence[Doc], candidates: Sequence[Sequence[Candidate]], kinds: Sequence[str]
) -> PairBatch:
    flat = [(i, cand) for i, doc_cands in enumerate(candidates) for cand in doc_cands]
    return PairBatch(
        docs=list(docs),
        heads=[(i, c.head.start, c.head.end) for i, c in flat],
        children=[(i, c.child.start, c.child.end) for i, c in flat],
        features=pair_features([c for _, c in flat], kinds),
    )


@registry.architectures("homs_ner.RelationModel.v1")
def build_relation_model(
    tok2vec: Model[list[Doc], list[Floats2d]],
    hidden_width: int = 128,
    nO: int | None = None,
) -> Model[PairBatch, Floats2d]:
    """Score every label for every candidate pair (multi-label, independent sigmoids).

    The hidden layer's dropout starts at 0 and takes `[training] dropout` during training
    (spaCy's `set_dropout_rate`), like spaCy's own components.
    """
    output = Linear(nO=nO)
    classifier = chain(Relu(nO=hidden_width, dropout=0.0), output, Logistic())
    return Model(
        "relation_model",
        _relation_forward,
        init=_relation_init,
        layers=[tok2vec, classifier],
        refs={"tok2vec": tok2vec, "classifier": classifier, "output": output},
        dims={"nO": nO},
    )


def _relation_forward(model: Model, batch: PairBatch, is_train: bool) -> tuple[Floats2d, Callable]:
    tokvecs, backprop_tokvecs = model.get_ref("tok2vec")(batch.docs, is_train)
    pairs, backprop_pairs = _pair_vectors(model.ops, tokvecs, batch)
    scores, backprop_scores = model.get_ref("classifier")(pairs, is_train)

    def backprop(d_scores: Floats2d) -> Any:
        return backprop_tokvecs(backprop_pairs(backprop_scores(d_scores)))

    return scores, backprop


def _relation_init(model: Model, X: PairBatch | None = None, Y: Floats2d | None = None) -> None:
    """Infer the hidden layer's input width (2 x tok2vec width + feature width) from a sample:
    the tok2vec width is only known once a listener's upstream component is initialized."""
    if X is None:
        raise ValueError("the relation model infers its input width from a sample: initialize it with X")
    tok2vec, classifier = model.get_ref("tok2vec"), model.get_ref("classifier")
    tok2vec.initialize(X=X.docs)
    pairs, _ = _pair_vectors(model.ops, tok2vec.predict(X.docs), X)
    classifier.initialize(X=pairs, Y=Y)
    model.set_dim("nO", model.get_ref("output").get_dim("nO"))


def _pair_vectors(ops: Ops, tokvecs: list[Floats2d], batch: PairBatch) -> tuple[Floats2d, Callable]:
    """[mean head vector | mean child vector | pair features] per candidate."""
    lengths = ops.asarray1i([len(t) for t in tokvecs])
    flat = ops.flatten(tokvecs)
    offsets = numpy.concatenate(([0], numpy.cumsum(ops.to_numpy(lengths))))
    head_rows, head_lengths = _rows(ops, batch.heads, offsets)
    child_rows, child_lengths = _rows(ops, batch.children, offsets)
    heads = ops.reduce_mean(flat[head_rows], head_lengths)
    children = ops.reduce_mean(flat[child_rows], child_lengths)
    pairs = ops.xp.hstack((heads, children, ops.asarray2f(batch.features)))
    width = flat.shape[1]

    def backprop(d_pairs: Floats2d) -> list[Floats2d]:
        d_flat = ops.alloc2f(*flat.shape)
        d_heads = ops.as_contig(d_pairs[:, :width])
        d_children = ops.as_contig(d_pairs[:, width : 2 * width])
        ops.scatter_add(d_flat, head_rows, ops.backprop_reduce_mean(d_heads, head_lengths))
        ops.scatter_add(d_flat, child_rows, ops.backprop_reduce_mean(d_children, child_lengths))
        return ops.unflatten(d_flat, lengths)

    return pairs, backprop


def _rows(ops: Ops, spans: list[tuple[int, int, int]], offsets: numpy.ndarray) -> tuple[Ints1d, Ints1d]:
    """Rows of the flattened token vectors covered by each span, and each span's length."""
    rows = [offsets[doc] + i for doc, start, end in spans for i in range(start, end)]
    return ops.asarray1i(rows), ops.asarray1i([end - start for _, start, end in spans])


@registry.layers("homs_ner.BoundaryScorer.v1")
def build_boundary_scorer(prior: float = 0.05, nO: int = 2, nI: int | None = None) -> Model[Floats2d, Floats2d]:
    """The span finder's start/end scorer (Linear + Logistic), starting at `prior`, not 0.5.

    Why: with spaCy's `LinearLogistic`, about half of an untrained finder's tokens pass the
    0.5 threshold, it proposes every start x end pair up to `max_length`, and the clause
    categorizer (trained on those proposals) then pools tens of thousands of spans per
    article until the finder has learnt -- for many steps while a warm-up learning rate is
    near 0. Starting from "boundaries are rare" keeps the first steps cheap.
    """
    bias = math.log(prior / (1.0 - prior))
    linear = Linear(nO=nO, nI=nI, init_W=glorot_uniform_init, init_b=partial(_constant, bias))
    return chain(linear, Logistic())


def _constant(value: float, ops: Ops, shape: tuple[int, ...]) -> Floats1d:
    return ops.alloc(shape, dtype="float32") + value


# --------------------------------------------------------------------------- frozen transformer features

LEXICAL_ATTRS = ("NORM", "PREFIX", "SUFFIX", "SHAPE")
LEXICAL_ROWS = (5000, 1000, 2500, 2500)


@registry.architectures("homs_ner.TransformerFeatures.v1")
def build_transformer_features(
    transformer: Model[list[Doc], list[Floats2d]],
    width: int = 256,
    lexical_width: int = 96,
    dropout: float = 0.1,
) -> Model[list[Doc], list[Floats2d]]:
    """A trainable view of a frozen transformer: [transformer; lexical] -> LayerNorm, Maxout.

    Used as the model of a ``tok2vec`` component that all heads listen to.  Why: the
    transformer is frozen (fine-tuning it does not fit 2 CPU cores), so the heads need a
    layer that can adapt.  LayerNorm first: e5's token vectors share a large common
    offset (per-dimension means ~0.17 against spreads ~0.13) that slows a bare Linear.  The
    small hash-embedding tok2vec (``lexical_width`` > 0) adds what a frozen subword model
    blurs: the token's own spelling, prefix, suffix and shape.  Measured on the dev split
    (NER alone on 6-layer e5, best entity F1 within 300 steps): 67.1 with the bare listener,
    73.4 with this layer and no lexical part, 76.7 with both.  One shared view rather than one
    per head: dev score 0.47 against 0.50 (confounded: 5 layers against 6) for about a third
    of the heads' inference time.
    """
    features = transformer
    if lexical_width:
        lexical = registry.get("architectures", "spacy.Tok2Vec.v2")(
            embed=registry.get("architectures", "spacy.MultiHashEmbed.v2")(
                width=lexical_width, attrs=list(LEXICAL_ATTRS), rows=list(LEXICAL_ROWS), include_static_vectors=False
            ),
            encode=registry.get("architectures", "spacy.MaxoutWindowEncoder.v2")(
                width=lexical_width, depth=1, window_size=1, maxout_pieces=3
            ),
        )
        features = concatenate(transformer, lexical)
    adapter = chain(LayerNorm(), Maxout(nO=width, nP=3, normalize=True, dropout=dropout))
    model = _chain_skipping_empty_docs(features, with_array(adapter))
    model.set_dim("nO", width)
    return model


def _chain_skipping_empty_docs(*layers: Model) -> Model[list[Doc], list[Floats2d]]:
    """`chain(*layers)` run on the docs with tokens; a doc without any gets a (0, nO) array.

    Why: the transformer listener gives a zero-length doc a (0, 0) array, not (0, nO), so
    joining the batch failed ("all the input array dimensions ... size 0 ... size 384") and
    one empty article crashed its whole batch. The node tree is exactly chain's, so
    pipelines trained before this change still load. Only at prediction: while training,
    the listener must see the batch the transformer saw, and training texts are never empty
    (validation rejects them).
    """
    chained = chain(*layers)

    def forward(model: Model, docs: list[Doc], is_train: bool) -> tuple[list[Floats2d], Callable]:
        keep = [i for i, doc in enumerate(docs) if len(doc)]
        if is_train or len(keep) == len(docs):
            return chain_forward(model, docs, is_train)
        found, backprop = chain_forward(model, [docs[i] for i in keep], is_train)
        out = [model.ops.alloc2f(0, model.get_dim("nO")) for _ in docs]
        for i, array in zip(keep, found):
            out[i] = array
        return out, lambda d_out: backprop([d_out[i] for i in keep])

    return Model(chained.name, forward, init=chain_init, dims=dict.fromkeys(chained.dim_names), layers=chained.layers)


# --------------------------------------------------------------------------- component

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
    default_config={"model": DEFAULT_RELATION_MODEL, "threshold": 0.5, "max_distance": 60},
    default_score_weights={"rel_micro_f": 1.0, "rel_micro_p": 0.0, "rel_micro_r": 0.0, "rel_per_type": None},
)
def make_relation_extractor(
    nlp: Language, name: str, model: Model[PairBatch, Floats2d], threshold: float, max_distance: int
) -> "RelationExtractor":
    """Construct the relation extractor; its labels come from the schema at initialization."""
    return RelationExtractor(nlp.vocab, model, name, threshold=threshold, max_distance=max_distance)


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
    ) -> None:
        self.vocab = vocab
        self.model = model
        self.name = name
        self.cfg: dict[str, Any] = {"threshold": threshold, "max_distance": max_distance, "schema": None}

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
            find_candidates(doc, doc_spans, rschema.kind_pairs, self.cfg["max_distance"])
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
        """Write the relations the schema allows and that pass the threshold (with their score)."""
        candidates, scores = predictions
        rschema, threshold = self.rschema, self.cfg["threshold"]
        row = 0
        for doc, doc_candidates in zip(docs, candidates):
            relations = []
            for cand in doc_candidates:
                allowed = rschema.label_mask(cand.head.kind, cand.child.kind)
                for label, ok, score in zip(rschema.labels, allowed, scores[row]):
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
        """Candidates among the reference's gold spans, on the predicted docs' tokens."""
        rschema = self.rschema
        return self._pairs([eg.predicted for eg in examples], [aligned_span_refs(eg, rschema) for eg in examples])

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
        """Take the labels from the schema file (default: the project's, unless the
        `add_schema_labels` callback has already set them) and size the model on a sample.

        `labels` (as `spacy init labels` writes them) keeps only those schema relations.
        """
        validate_get_examples(get_examples, "RelationExtractor.initialize")
        if schema_path is not None or labels is not None or not self.labels:
            self.set_schema(load_schema(schema_path), labels)
        sample = list(islice(get_examples(), 10))
        candidates, batch = self._gold_pairs(sample)
        truth, _ = self._truth(sample, candidates)
        self.model.initialize(X=batch, Y=self.model.ops.asarray2f(truth))

    # -- evaluation ----------------------------------------------------------------------

    def score(self, examples: Iterable[Example], **kwargs: Any) -> dict[str, Any]:
        return score_relations(examples)


def score_relations(examples: Iterable[Example]) -> dict[str, Any]:
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


# --------------------------------------------------------------------------- callbacks


@registry.callbacks("homs_ner.add_schema_labels.v1")
def make_add_schema_labels(schema_path: str) -> Callable[[Language], Language]:
    """`[initialize.before_init]`: labels from the schema file, not from what the training
    data happens to contain, so a label with no example yet still exists in every component
    (and evaluation reports it) and every run on any data split has the same output layers."""

    def add_schema_labels(nlp: Language) -> Language:
        schema = load_schema(schema_path)
        for name, pipe in nlp.pipeline:
            factory = nlp.get_pipe_meta(name).factory
            if factory == "ner":
                for label in schema.entity_labels:
                    pipe.add_label(label)
            elif factory in SPAN_CATEGORIZERS:
                _check_spans_key(name, pipe.key, schema)
                for label in schema.clause_labels:
                    pipe.add_label(label)
            elif factory == "span_finder":
                _check_spans_key(name, pipe.cfg["spans_key"], schema)
            elif isinstance(pipe, RelationExtractor):
                pipe.set_schema(schema)
        return nlp

    return add_schema_labels


def _check_spans_key(name: str, key: str, schema: Schema) -> None:
    """Clause components must use the schema's span group: the span finder learns from the
    gold clauses under its own key, and the relation extractor reads them there."""
    if key != schema.span_group:
        raise ValueError(
            f"component {name!r} uses spans_key {key!r}; the schema {schema.path} says {schema.span_group!r}"
        )
