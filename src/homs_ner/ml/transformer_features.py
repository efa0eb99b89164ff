"""A trainable view of the frozen shared transformer (`homs_ner.TransformerFeatures.v1`)."""

from collections.abc import Callable

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import LayerNorm, Maxout, Model, chain, concatenate, with_array
from thinc.layers.chain import forward as chain_forward, init as chain_init
from thinc.types import Floats2d


LEXICAL_ATTRS = ("NORM", "PREFIX", "SUFFIX", "SHAPE")
LEXICAL_ROWS = (5000, 1000, 2500, 2500)


@registry.architectures("homs_ner.TransformerFeatures.v1")
def build_transformer_features(
    transformer: Model[list[Doc], list[Floats2d]],
    width: int = 256,
    lexical_width: int = 96,
    dropout: float = 0.1,
    context_depth: int = 0,
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
    if context_depth:
        adapter = chain(adapter, _context_encoder(width, context_depth))
    model = _chain_skipping_empty_docs(features, with_array(adapter))
    model.set_dim("nO", width)
    return model


def _context_encoder(width: int, depth: int) -> Model[Floats2d, Floats2d]:
    """Trainable context over the frozen vectors: `depth` residual Maxout layers, each over
    a window of one token either side (spaCy's MaxoutWindowEncoder).

    Why: the adapter above sees one token at a time, and the frozen transformer was never
    trained to mark where a clause or an entity starts; the clause tagger's softmax reads
    only what this layer gives it.
    """
    encoder = registry.get("architectures", "spacy.MaxoutWindowEncoder.v2")
    return encoder(width=width, depth=depth, window_size=1, maxout_pieces=3)


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


