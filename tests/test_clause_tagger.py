"""The clause tagger (untyped BILUO + constrained Viterbi) and the gold-trained clause classifier."""

from __future__ import annotations

import numpy
import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example

from homs_ner.pipeline.clause_tagger import TAGS, biluo_tags, paragraph_breaks, tags_to_spans, viterbi
from homs_ner.data.tokenizer import blank_arabic

from tiny_corpus import DATA, make_doc

B, I, L, U, O = (TAGS.index(t) for t in "BILUO")


def one_hot_log(tags: list[int], confidence: float = 0.9) -> numpy.ndarray:
    probs = numpy.full((len(tags), len(TAGS)), (1 - confidence) / (len(TAGS) - 1))
    probs[numpy.arange(len(tags)), tags] = confidence
    return numpy.log(probs)


def test_biluo_tags_round_trip_through_viterbi() -> None:
    spans = [(0, 1), (2, 5), (6, 8)]
    tags = [TAGS.index(t) for t in biluo_tags(9, spans)]
    assert tags_to_spans(viterbi(one_hot_log(tags), [False] * 9)) == spans


def test_viterbi_repairs_invalid_sequences() -> None:
    # B I O: a clause opened and never closed; the best valid path closes it or drops it.
    path = viterbi(one_hot_log([B, I, O, O]), [False] * 4)
    assert all(next_tag in {I, L} for tag, next_tag in zip(path, path[1:]) if tag in (B, I))
    assert path[-1] in (O, L, U)


def test_no_clause_crosses_a_paragraph_break() -> None:
    # The model wants one clause over tokens 0-4, but token 2 is a newline.
    log_probs = one_hot_log([B, I, I, I, L], confidence=0.6)
    spans = tags_to_spans(viterbi(log_probs, [False, False, True, False, False]))
    assert all(not (start <= 2 < end) for start, end in spans)


def test_paragraph_breaks_are_newline_tokens() -> None:
    nlp = blank_arabic()
    doc = nlp.make_doc("وقف إطلاق النار.\n\nخروج المسلحين.")
    breaks = [token.text for token, is_break in zip(doc, paragraph_breaks(doc)) if is_break]
    assert breaks == ["\n\n"]


@pytest.fixture(scope="module")
def trained() -> tuple[Language, list[Doc]]:
    """tok2vec -> clause_tagger + clause_classifier, overfitted on the tiny docs."""
    nlp = blank_arabic()
    gold = [make_doc(nlp, *row) for row in DATA]
    nlp.add_pipe("clause_tagger")
    classifier = nlp.add_pipe("clause_classifier")
    for label in sorted({c.label_ for doc in gold for c in doc.spans["clauses"]}):
        classifier.add_label(label)
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in gold]
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(60):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    return nlp, gold


def test_tagger_and_classifier_overfit_the_tiny_docs(trained: tuple[Language, list[Doc]]) -> None:
    nlp, gold = trained
    for ref in gold:
        doc = nlp(ref.text)
        expected = {(c.start_char, c.end_char, c.label_) for c in ref.spans["clauses"]}
        assert {(c.start_char, c.end_char, c.label_) for c in doc.spans["clauses"]} == expected


def test_trained_clause_components_survive_to_disk_and_back(trained: tuple[Language, list[Doc]], tmp_path) -> None:
    nlp, gold = trained
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    before, after = nlp(gold[0].text), loaded(gold[0].text)
    assert [(c.text, c.label_) for c in after.spans["clauses"]] == [(c.text, c.label_) for c in before.spans["clauses"]]


def test_empty_docs_get_no_clauses(trained: tuple[Language, list[Doc]]) -> None:
    nlp, _ = trained
    docs = list(nlp.pipe(["", "   "]))
    assert [len(d.spans["clauses"]) for d in docs] == [0, 0]
