"""The span finder's boundary scorer (`homs_ner.BoundaryScorer.v1`)."""

import math
from functools import partial

from spacy.util import registry
from thinc.api import Linear, Logistic, Model, Ops, chain, glorot_uniform_init
from thinc.types import Floats1d, Floats2d


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

