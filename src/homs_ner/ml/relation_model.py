"""The relation extractor's model (`homs_ner.RelationModel.v1`): tok2vec -> mean-pooled head
and child vectors + pair features -> ReLU -> Linear + Logistic, one independent score per
relation label.

The pipe (`homs_ner.pipeline.relation_extractor`) builds the candidate pairs and their
features; this module only turns a `PairBatch` into scores, as spaCy's models in
`spacy/ml/models/` do for their pipes.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Linear, Logistic, Model, Ops, Relu, chain
from thinc.types import Floats2d, Ints1d


class PairBatch(NamedTuple):
    """The relation model's input: the docs (for the tok2vec) and, per candidate, its doc
    index, head and child token ranges, and pair features."""

    docs: list[Doc]
    heads: list[tuple[int, int, int]]
    children: list[tuple[int, int, int]]
    features: Floats2d


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


