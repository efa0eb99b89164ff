"""Models and layers of the project's pipeline components (as spaCy's `spacy/ml/models/`).

One module per architecture or layer; importing this package registers them all. The
pipes that use them live in `homs_ner.pipeline`.
"""

from . import boundary_scorer, int8_transformer, relation_model, transformer_features

__all__ = ["boundary_scorer", "int8_transformer", "relation_model", "transformer_features"]
