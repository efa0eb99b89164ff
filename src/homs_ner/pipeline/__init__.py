"""The project's own pipeline components (as spaCy's `spacy/pipeline/`): one module per
component, each with its factory, scorer and helpers; their models are in `homs_ner.ml`.
Importing this package registers them all (the entry points in pyproject.toml do the same
for `spacy.load` without an import)."""

from . import callbacks, relation_candidates, relation_extractor

__all__ = ["callbacks", "relation_candidates", "relation_extractor"]
