"""Training callbacks: `homs_ner.add_schema_labels.v1` gives every component its labels from
the label schema (`configs/labels.yml`), not from the data."""

from collections.abc import Callable

from spacy.language import Language
from spacy.util import registry

from homs_ner.data.schema import Schema, load_schema
from homs_ner.pipeline.relation_extractor import RelationExtractor

SPAN_CATEGORIZERS = frozenset({"spancat", "spancat_singlelabel"})


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
