"""The relation extractor, the schema-label callback and the two training configs.

Tiny hand-made Arabic docs (two paragraphs each: entities, clauses, relations) stand in for
the corpus; the transformer test uses a tiny random BERT, so nothing is downloaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.cli.debug_config import debug_config
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import Example

from homs_ner.cli.defaults import SCHEMA_PATH as DEFAULT_SCHEMA_PATH
from homs_ner.data.tokenizer import blank_arabic
from homs_ner.pipeline.relation_candidates import Candidate, RelationSchema, find_candidates, gold_relations, span_refs
from homs_ner.pipeline.relation_extractor import RelationExtractor, score_relations

from doubles import backbone_pipeline, tiny_random_backbone
from tiny_corpus import CONFIGS, DATA, SCHEMA, make_doc, train_config


@pytest.fixture(scope="module")
def nlp() -> Language:
    return blank_arabic()


@pytest.fixture(scope="module")
def gold(nlp: Language) -> list[Doc]:
    return [make_doc(nlp, *row) for row in DATA]


def spans_only(nlp: Language, doc: Doc) -> Doc:
    """The doc's entities and clauses without its relations: the relation extractor's input."""
    text, ents, clauses, _ = next(row for row in DATA if row[0] == doc.text)
    return make_doc(nlp, text, ents, clauses, None)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, gold: list[Doc]) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "tiny.spacy"
    DocBin(docs=gold, store_user_data=True).to_disk(path)
    return path


def rschema() -> RelationSchema:
    return RelationSchema.from_schema(SCHEMA)


def candidate_texts(doc: Doc, max_distance: int = 60) -> dict[tuple[str, str], Candidate]:
    """{(head text, child text): candidate} for the doc's entities and clauses."""
    schema = rschema()
    found = find_candidates(doc, span_refs(doc, schema), schema.kind_pairs, max_distance)
    text = doc.text
    return {(text[c.head.start_char : c.head.end_char], text[c.child.start_char : c.child.end_char]): c for c in found}


# --------------------------------------------------------------------------- candidates


def test_candidates_only_pair_kinds_some_relation_allows(gold: list[Doc]) -> None:
    allowed = SCHEMA.candidate_pairs()
    for doc in gold:
        found = candidate_texts(doc).values()
        assert found and all((c.head.kind, c.child.kind) in allowed for c in found)
    pairs = candidate_texts(gold[0])
    assert ("الجيش السوري", "حي الوعر") not in pairs  # ACTOR -> PLACE: no relation allows it
    assert ("حي الوعر", "وقف إطلاق النار في حي الوعر") not in pairs  # relations run from the clause
    assert ("يوم الاثنين", "الحكومة السورية") not in candidate_texts(gold[2])  # DATE takes no relation


def test_candidates_cover_every_gold_relation(gold: list[Doc]) -> None:
    for doc in gold:
        keys = {c.key for c in candidate_texts(doc).values()}
        assert set(gold_relations(doc)) <= keys


def test_candidates_stay_within_a_paragraph(gold: list[Doc]) -> None:
    pairs = candidate_texts(gold[0])
    assert ("وقف إطلاق النار في حي الوعر", "المسلحين") not in pairs  # next paragraph
    assert ("حي الوعر", "ريف حمص الشمالي") not in pairs
    evacuation = pairs[("خروج المسلحين إلى ريف حمص الشمالي", "المسلحين")]
    assert evacuation.contains and evacuation.distance == 0
    assert ("تسليم السلاح الثقيل خلال عشرة أيام", "لجنة المصالحة") not in candidate_texts(gold[1])  # across "\n\n"


def test_candidates_respect_max_distance(gold: list[Doc]) -> None:
    pair = ("تسليم السلاح الثقيل خلال عشرة أيام", "الأمم المتحدة")  # one token apart
    assert candidate_texts(gold[1], max_distance=1)[pair].distance == 1
    assert pair not in candidate_texts(gold[1], max_distance=0)
    assert ("تسليم السلاح الثقيل خلال عشرة أيام", "عشرة أيام") in candidate_texts(gold[1], max_distance=0)


# --------------------------------------------------------------------------- training


Trained = tuple[Language, list[float]]


@pytest.fixture(scope="module")
def trained(gold: list[Doc]) -> Trained:
    """A tokenizer + relation_extractor pipeline overfitted on the tiny docs, and its losses."""
    nlp = blank_arabic()
    nlp.add_pipe("relation_extractor").set_schema(SCHEMA)  # no default schema: the caller names it
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in gold]
    optimizer = nlp.initialize(lambda: examples)
    losses = [nlp.update(examples, sgd=optimizer)["relation_extractor"] for _ in range(30)]
    return nlp, losses


def test_initialize_takes_labels_and_pairs_from_the_schema(trained: Trained) -> None:
    pipe = trained[0].get_pipe("relation_extractor")
    assert pipe.labels == tuple(SCHEMA.relation_labels)
    assert pipe.rschema == rschema()


def test_initialize_without_a_schema_says_how_to_give_one(gold: list[Doc]) -> None:
    nlp = blank_arabic()
    nlp.add_pipe("relation_extractor")
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in gold]
    with pytest.raises(ValueError, match="no label schema.*schema_path.*add_schema_labels"):
        nlp.initialize(lambda: examples)


def test_relation_extractor_names_its_scorer_and_candidates_in_its_config() -> None:
    nlp = blank_arabic()
    pipe = nlp.add_pipe("relation_extractor")
    cfg = nlp.config["components"]["relation_extractor"]
    assert cfg["scorer"] == {"@scorers": "homs_ner.relation_scorer.v1"}
    assert cfg["candidates"] == {"@misc": "homs_ner.relation_candidates.v1"}
    assert pipe.scorer is score_relations and pipe.candidates is find_candidates


def kind(span_label: str) -> str:
    """The relation-pair kind of a Doccano-style span label."""
    span_kind, label = SCHEMA.parse_span_label(span_label)
    return "CLAUSE" if span_kind == "clause" else label


def test_relation_extractor_overfits_the_tiny_docs(nlp: Language, gold: list[Doc], trained: Trained) -> None:
    model, losses = trained
    assert losses[-1] < losses[0] / 10
    predicted = [model(spans_only(nlp, doc)) for doc in gold]
    for rel in (rel for doc in predicted for rel in doc._.relations):
        assert SCHEMA.relation_allowed(rel["label"], kind(rel["head"]["label"]), kind(rel["child"]["label"]))
        assert 0.5 <= rel["score"] <= 1.0
    scores = score_relations(Example(p, g) for p, g in zip(predicted, gold))
    assert scores["rel_micro_f"] == 1.0
    assert set(scores["rel_per_type"]) == {rel["label"] for doc in gold for rel in doc._.relations}


def test_score_counts_missing_and_spurious_relations(nlp: Language, gold: list[Doc]) -> None:
    predicted = spans_only(nlp, gold[0])
    predicted._.relations = gold[0]._.relations[1:] + [{**gold[0]._.relations[0], "label": "affected"}]
    scores = score_relations([Example(predicted, gold[0])])
    assert scores["rel_micro_p"] == scores["rel_micro_r"] == 0.75
    assert scores["rel_per_type"]["agent"]["r"] == 0.0 and scores["rel_per_type"]["affected"]["p"] == 0.5


# --------------------------------------------------------------------------- serialization


def test_to_disk_from_disk_keeps_labels_pairs_and_predictions(
    tmp_path: Path, nlp: Language, gold: list[Doc], trained: Trained
) -> None:
    pipe: RelationExtractor = trained[0].get_pipe("relation_extractor")
    pipe.to_disk(tmp_path / "rel")
    loaded = blank_arabic().add_pipe("relation_extractor").from_disk(tmp_path / "rel")
    assert loaded.cfg == pipe.cfg and loaded.rschema == pipe.rschema
    def relations(extractor: RelationExtractor) -> list:
        return [doc._.relations for doc in extractor.pipe(spans_only(nlp, doc) for doc in gold)]

    assert relations(loaded) == relations(pipe)


def run_fresh(code: str, *args: str) -> object:
    """Run `code` in a new interpreter (no homs_ner import) and return the JSON it prints."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, cwd="/")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


LOAD_AND_RUN = """
import json, sys, spacy
from spacy.tokens import DocBin
nlp = spacy.load(sys.argv[1])
docs = list(DocBin().from_disk(sys.argv[2]).get_docs(nlp.vocab))
print(json.dumps([[r["label"] for r in nlp(doc)._.relations] for doc in docs]))
"""


def test_saved_pipeline_loads_with_plain_spacy_load_in_a_fresh_process(
    tmp_path: Path, nlp: Language, gold: list[Doc], trained: Trained
) -> None:
    trained[0].to_disk(tmp_path / "model")
    DocBin(docs=[spans_only(nlp, doc) for doc in gold], store_user_data=True).to_disk(tmp_path / "in.spacy")
    labels = run_fresh(LOAD_AND_RUN, str(tmp_path / "model"), str(tmp_path / "in.spacy"))
    assert [sorted(x) for x in labels] == [sorted(r["label"] for r in doc._.relations) for doc in gold]


# --------------------------------------------------------------------------- schema callback


def test_callback_adds_every_schema_label(tmp_path: Path) -> None:
    nlp = blank_arabic()
    nlp.add_pipe("ner")
    nlp.add_pipe("span_finder", config={"spans_key": SCHEMA.span_group})
    nlp.add_pipe("spancat_singlelabel", name="clauses", config={"spans_key": SCHEMA.span_group})
    nlp.add_pipe("relation_extractor", name="rel")
    add_labels = spacy.registry.callbacks.get("homs_ner.add_schema_labels.v1")(str(DEFAULT_SCHEMA_PATH))
    add_labels(nlp)
    assert sorted(nlp.get_pipe("ner").labels) == sorted(SCHEMA.entity_labels)
    assert list(nlp.get_pipe("clauses").labels) == SCHEMA.clause_labels
    assert nlp.get_pipe("rel").rschema == rschema()


def test_callback_labels_the_clause_classifier_and_checks_the_tagger_key() -> None:
    nlp = blank_arabic()
    nlp.add_pipe("clause_tagger")
    nlp.add_pipe("clause_classifier")
    add_labels = spacy.registry.callbacks.get("homs_ner.add_schema_labels.v1")(str(DEFAULT_SCHEMA_PATH))
    add_labels(nlp)
    assert list(nlp.get_pipe("clause_classifier").labels) == SCHEMA.clause_labels
    other = blank_arabic()
    other.add_pipe("clause_tagger", config={"spans_key": "sc"})
    with pytest.raises(ValueError, match="spans_key 'sc'"):
        add_labels(other)


def test_callback_refuses_a_clause_component_on_another_key() -> None:
    nlp = blank_arabic()
    nlp.add_pipe("spancat_singlelabel", config={"spans_key": "sc"})
    with pytest.raises(ValueError, match="spans_key 'sc'"):
        spacy.registry.callbacks.get("homs_ner.add_schema_labels.v1")(str(DEFAULT_SCHEMA_PATH))(nlp)


# --------------------------------------------------------------------------- configs


@pytest.fixture(scope="module")
def tiny_backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sourced-transformer pipeline on a tiny random BERT (what the backbone step builds)."""
    root = tmp_path_factory.mktemp("backbone")
    return assembled_backbone(tiny_random_backbone(root / "hf", [row[0] for row in DATA]), root / "pipe")


def assembled_backbone(transformer: Path, out: Path) -> Path:
    """What `spacy project run backbone` makes: the transformer pipeline the config sources."""
    backbone_pipeline(transformer).to_disk(out)
    return out


@pytest.mark.parametrize("name", ["tok2vec.cfg", "transformer.cfg"])
def test_config_passes_debug_config(name: str, corpus: Path, tiny_backbone: Path) -> None:
    overrides = {"paths.train": str(corpus), "paths.dev": str(corpus)}
    if name == "transformer.cfg":
        overrides["paths.backbone"] = str(tiny_backbone)
    debug_config(CONFIGS / name, overrides=overrides)  # exits on an invalid config


PIPELINE_INFO = """
import json, sys, spacy
nlp = spacy.load(sys.argv[1])
doc = nlp(sys.argv[2])
print(json.dumps({"pipeline": nlp.pipe_names, "ner": sorted(nlp.get_pipe("ner").labels),
                  "relations": doc._.relations, "clauses": "clauses" in doc.spans}))
"""


@pytest.mark.slow
def test_tok2vec_config_trains_and_loads_in_a_fresh_process(tmp_path: Path, corpus: Path) -> None:
    model = train_config("tok2vec.cfg", tmp_path, corpus, **{"training.max_steps": 4})
    info = run_fresh(PIPELINE_INFO, str(model), DATA[0][0])
    assert info["pipeline"] == ["tok2vec", "ner", "clause_tagger", "clause_classifier", "relation_extractor"]
    assert info["ner"] == sorted(SCHEMA.entity_labels)
    assert isinstance(info["relations"], list) and info["clauses"]


@pytest.mark.slow
def test_transformer_config_trains_on_a_frozen_tiny_random_backbone(tmp_path: Path, corpus: Path, tiny_backbone: Path) -> None:
    def hidden(nlp: Language) -> object:
        return nlp(DATA[1][0])._.trf_data.model_output.last_hidden_state

    before = hidden(spacy.load(tiny_backbone))
    model = train_config("transformer.cfg", tmp_path / "out", corpus, **{"paths.backbone": str(tiny_backbone), "training.max_steps": 4})
    nlp = spacy.load(model)
    assert nlp.pipe_names == ["transformer", "tok2vec", "ner", "clause_tagger", "clause_classifier", "relation_extractor"]
    assert (hidden(nlp) == before).all()  # frozen: the transformer's output did not move
    assert "source" not in nlp.config["components"]["transformer"]  # the trained pipeline stands alone
    assert nlp.get_pipe("relation_extractor").rschema == rschema()
    assert isinstance(nlp(DATA[1][0])._.relations, list)


def test_transformer_features_concatenate_a_lexical_view_only_when_asked() -> None:
    build = spacy.registry.architectures.get("homs_ner.TransformerFeatures.v1")
    listener = spacy.registry.architectures.get("spacy-transformers.TransformerListener.v1")(
        grad_factor=0.0, pooling=spacy.registry.layers.get("reduce_mean.v1")(), upstream="transformer"
    )
    with_lexical = build(listener, width=32, lexical_width=16)
    without = build(listener, width=32, lexical_width=0)
    assert with_lexical.get_dim("nO") == without.get_dim("nO") == 32
    assert any(node.name.startswith("hashembed") for node in with_lexical.walk())
    assert not any(node.name.startswith("hashembed") for node in without.walk())


LOAD_PACKAGE = """
import json, sys, spacy, homs_ner
nlp = spacy.load(sys.argv[1])
result = homs_ner.analyze(nlp, sys.argv[2])
print(json.dumps({"pipeline": nlp.pipe_names, "keys": sorted(result), "file": spacy.util.get_package_path(sys.argv[1]).as_posix()}))
"""


def test_learning_curve_trains_every_fraction_repeatedly_and_reports_the_spread(gold: list[Doc]) -> None:
    """Real (tiny) trainings: each fraction gets `repeats` draws, summarised as mean ± stdev."""
    from homs_ner.evaluate.experiments import learning_curve, learning_curve_markdown

    articles = [Doc(d.vocab).from_bytes(d.to_bytes()) for d in gold]
    for i, doc in enumerate(articles):
        doc.user_data["meta"] = {"article_id": f"a{i}"}
    result = learning_curve(
        CONFIGS / "tok2vec.cfg", articles, articles, articles, SCHEMA,
        {"training.max_steps": 2}, fractions=(0.34, 1.0), repeats=2, progress=lambda _: None,
    )  # fmt: skip
    assert result["articles"] == {"34%": 1, "100%": 3}
    assert result["subsets"]["100%"] == {"draw 1": ["a0", "a1", "a2"], "draw 2": ["a0", "a1", "a2"]}
    assert all(list(runs) == ["draw 1", "draw 2"] for runs in result["runs"].values())
    ents = result["summary"]["100%"]["entities micro F1"]
    assert ents["runs"].keys() == {"draw 1", "draw 2"} and ents["stdev"] >= 0.0
    markdown = learning_curve_markdown("Learning curve", result, "note")
    assert "| measure | 34% (1 article) | 100% (3 articles) |" in markdown
    assert f"{100 * ents['mean']:.1f} ± {100 * ents['stdev']:.1f} |" in markdown


def test_event_cross_validation_holds_out_each_event_and_never_the_test_split(gold: list[Doc], tmp_path: Path) -> None:
    """Real (tiny) trainings: one fold per event group; test-split articles take no part;
    finished folds are stored, and a second run trains nothing."""
    from homs_ner.evaluate.experiments import event_folds, run_folds

    articles = [Doc(d.vocab).from_bytes(d.to_bytes()) for d in gold * 2]
    splits = ["train", "dev", "train", "dev", "train", "test"]
    for i, (doc, split) in enumerate(zip(articles, splits)):
        doc.user_data["meta"] = {"article_id": f"a{i}", "split": split}
    events = {"a0": "siege", "a1": "siege", "a2": "truce", "a3": "truce", "a4": "siege", "a5": "truce"}
    folds = event_folds(articles, events)
    assert sorted(folds) == ["siege", "truce"]
    only_truce = {"truce": folds["truce"]}
    partial = run_folds(CONFIGS / "tok2vec.cfg", folds, SCHEMA, {"training.max_steps": 2}, lambda _: None, tmp_path, train_missing=False)
    assert partial["runs"] == {} and partial["folds"] == 2
    first = run_folds(CONFIGS / "tok2vec.cfg", only_truce, SCHEMA, {"training.max_steps": 2}, lambda _: None, tmp_path)
    assert first["runs"]["truce"]["docs"] == 2  # a2 and a3; a5 is in the test split
    assert "unseen-mention recall" in first["summary"]
    trained: list[str] = []
    again = run_folds(CONFIGS / "tok2vec.cfg", folds, SCHEMA, {}, trained.append, tmp_path, train_missing=False)
    assert again["runs"] == json.loads(json.dumps(first["runs"])) and again["folds"] == 2
    assert [m for m in trained if m.startswith("fold: held out")] == []
    without_a4 = {k: v for k, v in events.items() if k != "a4"}
    with pytest.raises(ValueError, match="a4"):
        event_folds(articles, without_a4)


@pytest.mark.slow
def test_packaged_pipeline_installs_and_loads_by_name_in_a_fresh_process(tmp_path: Path, corpus: Path) -> None:
    """`spacy package` builds an sdist; installed (here into a target folder) it loads by name."""
    from spacy.cli.package import package

    model = train_config("tok2vec.cfg", tmp_path / "train", corpus, **{"training.max_steps": 2})
    (tmp_path / "pkg").mkdir()
    package(model, tmp_path / "pkg", name="homs_ner_test", version="0.0.1", create_sdist=True, force=True, silent=True)
    sdist = next((tmp_path / "pkg").glob("*/dist/*.tar.gz"))
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(sdist)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    env_code = f"import sys; sys.path.insert(0, {str(site)!r});" + LOAD_PACKAGE
    info = run_fresh(env_code, "ar_homs_ner_test", DATA[0][0])
    assert info["pipeline"][-1] == "relation_extractor"
    assert info["keys"] == ["clauses", "entities", "relations", "text"]
    assert info["file"].startswith(site.as_posix())


@pytest.mark.slow
def test_real_backbone_builds_and_the_transformer_pipeline_trains_a_few_steps(tmp_path: Path, corpus: Path) -> None:
    """The end-to-end smoke path: the offline e5 backbone, then `spacy train` on it."""
    from homs_ner.backbone.build import build_backbone

    report = build_backbone(tmp_path / "e5", corpus_texts=[row[0] for row in DATA], verify=True)
    assert report["verify"]["cosine_min"] >= 0.99
    backbone = assembled_backbone(tmp_path / "e5", tmp_path / "pipe")
    model = train_config("transformer.cfg", tmp_path / "out", corpus, **{"paths.backbone": str(backbone), "training.max_steps": 2})
    info = run_fresh(PIPELINE_INFO, str(model), DATA[0][0])
    assert info["pipeline"][0] == "transformer" and info["ner"] == sorted(SCHEMA.entity_labels)


def test_relation_extractor_learns_from_predicted_spans_only_when_asked(nlp: Language, gold: list[Doc]) -> None:
    """With `predicted_spans`, a predicted span that is no gold span adds negative pairs."""
    doc = gold[0]
    predicted = make_doc(nlp, doc.text, [], [], None)
    wrong = predicted[doc.ents[0].start : doc.ents[0].end + 1]  # one token too long
    predicted.ents = [predicted.char_span(wrong.start_char, wrong.end_char, label=doc.ents[0].label_)]
    example = Example(predicted, doc)

    def pair_keys(predicted_spans: bool) -> set[tuple]:
        pipe = blank_arabic().add_pipe("relation_extractor", config={"predicted_spans": predicted_spans})
        pipe.set_schema(SCHEMA)
        candidates, _ = pipe._gold_pairs([example])
        return {cand.key for cand in candidates[0]}

    only_gold, with_predicted = pair_keys(False), pair_keys(True)
    assert only_gold < with_predicted
    extra = with_predicted - only_gold
    assert all((wrong.start_char, wrong.end_char) in {key[:2], key[3:5]} for key in extra)
    assert not extra & set(gold_relations(doc))  # they are negatives
