"""What the relation extractor scores: the schema's view of relations and the candidate pairs.

Candidates are ordered pairs (head, child) of entities and clauses whose kinds some relation
allows, in the same paragraph and at most `max_distance` tokens apart. The pipe, not the
model, builds them (as spancat's suggester proposes spans): in training from the reference
doc's gold spans (so the relation model learns from clean spans even while `ner` and the
clause categorizer are still poor), at prediction from the doc's own entities and clauses.
The generator is registered as `homs_ner.relation_candidates.v1` and named in the
component's config.
"""

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy
from spacy.tokens import Doc
from spacy.tokens import Span as SpacySpan
from spacy.training import Example
from spacy.util import registry
from thinc.types import Floats2d, Ints1d

from homs_ner.data.conversion import relations_of
from homs_ner.data.schema import CLAUSE_KIND, Schema, kind_pairs
from homs_ner.ml.relation_model import PairBatch

DISTANCE_BUCKETS = (1, 3, 6, 11, 21, 41)
"""Lower bounds of the distance buckets after 0: 0 | 1-2 | 3-5 | 6-10 | 11-20 | 21-40 | 41+.
Roughly logarithmic: a word more matters inside a phrase, not across half a paragraph."""

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

    def restrict(self, labels: Sequence[str]) -> "RelationSchema":
        """Only `labels` of these relations (as `spacy init labels` lists them)."""
        unknown = sorted(set(labels) - set(self.labels))
        if unknown:
            raise ValueError(f"relation labels {unknown} are not among {list(self.labels)}")
        return RelationSchema(
            labels=tuple(labels),
            pairs={label: self.pairs[label] for label in labels},
            kinds=self.kinds,
            clause_prefix=self.clause_prefix,
            spans_key=self.spans_key,
        )

    @property
    def kind_pairs(self) -> frozenset[tuple[str, str]]:
        """(head kind, child kind) pairs some label allows: the only pairs worth scoring."""
        return kind_pairs(self.pairs)

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


CandidateGenerator = Callable[[Doc, Sequence[SpanRef], frozenset[tuple[str, str]], int], list[Candidate]]


@registry.misc("homs_ner.relation_candidates.v1")
def make_candidate_generator() -> CandidateGenerator:
    """The relation extractor's candidate generator (`find_candidates`), named in its config
    as spancat names its suggester, so that another strategy can be swapped in by config."""
    return find_candidates


def make_pair_batch(
    docs: Sequence[Doc], candidates: Sequence[Sequence[Candidate]], kinds: Sequence[str]
) -> PairBatch:
    """The relation model's input for each doc's candidates, flattened in doc order."""
    flat = [(i, cand) for i, doc_cands in enumerate(candidates) for cand in doc_cands]
    return PairBatch(
        docs=list(docs),
        heads=[(i, c.head.start, c.head.end) for i, c in flat],
        children=[(i, c.child.start, c.child.end) for i, c in flat],
        features=pair_features([c for _, c in flat], kinds),
    )
