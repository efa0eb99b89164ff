"""A trainable view of the frozen shared transformer (`homs_ner.TransformerFeatures.v1`)."""

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import LayerNorm, Maxout, Model, chain, concatenate, with_array
from thinc.types import Floats2d


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
    model = chain(features, with_array(adapter))
    model.set_dim("nO", width)
    return model


