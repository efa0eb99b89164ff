"""Training callbacks: `homs_ner.add_schema_labels.v1` gives every component its labels from
the label schema (`configs/labels.yml`), not from the data; `homs_ner.train_top_layers.v1`
lets training update the shared transformer's top layers."""

from collections.abc import Callable

from spacy.language import Language
from spacy.util import registry

from homs_ner.data.schema import Schema, load_schema
from homs_ner.pipeline.relation_extractor import RelationExtractor

SPAN_CATEGORIZERS = frozenset({"spancat", "spancat_singlelabel", "clause_classifier"})
SPAN_FINDERS = frozenset({"span_finder", "clause_tagger"})


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
            elif factory in SPAN_FINDERS:
                _check_spans_key(name, pipe.cfg["spans_key"], schema)
            elif isinstance(pipe, RelationExtractor):
                pipe.set_schema(schema)
        return nlp

    return add_schema_labels


def _check_spans_key(name: str, key: str, schema: Schema) -> None:
    """Clause components must use the schema's span group: the span finder or clause tagger
    learns from the gold clauses under its own key, and the relation extractor reads them there."""
    if key != schema.span_group:
        raise ValueError(
            f"component {name!r} uses spans_key {key!r}; the schema {schema.path} says {schema.span_group!r}"
        )


@registry.callbacks("homs_ner.train_top_layers.v1")
def make_train_top_layers(layers: int = 0, learn_rate: float = 5e-5) -> Callable[[Language], Language]:
    """`[initialize.after_init]`: train the top `layers` of the shared transformer at
    `learn_rate` (0: the transformer stays as it is). For the ablation of unfreezing the
    backbone (issue 10): it also needs `training.frozen_components` without "transformer"
    and the listener's `grad_factor` at 1.0, or no gradient reaches those layers."""

    def train_top_layers(nlp: Language) -> Language:
        if layers:
            from homs_ner.ml.int8_transformer import Int8HFShim

            shims = nlp.get_pipe("transformer").model.layers[0].shims
            if not shims or not isinstance(shims[0], Int8HFShim):
                raise ValueError("train_top_layers needs the transformer of homs_ner.Int8TransformerModel.v1")
            shims[0].train_top_layers(layers, learn_rate)
        return nlp

    return train_top_layers
