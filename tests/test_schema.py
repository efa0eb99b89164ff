"""The schema file is the single source of truth: its structure and its checks."""

from pathlib import Path

import pytest
import yaml

from homs_ner.data.schema import CLAUSE_KIND, SchemaError, parse_schema

from doubles import load_schema


def test_project_schema_lists_the_issue_labels():
    schema = load_schema()
    assert schema.entity_labels == ["ACTOR", "PLACE", "QUANTITY", "DATE"]
    assert set(schema.clause_labels) == {
        "CEASEFIRE", "EVACUATION", "WEAPONS", "HUMANITARIAN", "DETAINEES",
        "SETTLEMENT", "SECURITY", "GOVERNANCE", "RETURN", "MONITORING",
    }
    assert set(schema.relation_labels) == {
        "agent", "affected", "guarantor", "location", "destination", "amount",
        "located_in", "affiliated_with", "count_of",
    }
    for label in [*schema.doccano_span_labels, *schema.relations]:
        assert label.en and label.ar and label.color.startswith("#") and label.key


def test_span_labels_and_relation_pairs():
    schema = load_schema()
    assert schema.parse_span_label("ACTOR") == ("entity", "ACTOR")
    assert schema.parse_span_label("CLAUSE:EVACUATION") == ("clause", "EVACUATION")
    assert schema.parse_span_label("CLAUSE:NOPE") is None
    assert schema.parse_span_label("PERSON") is None
    assert schema.relation_allowed("agent", CLAUSE_KIND, "ACTOR")
    assert not schema.relation_allowed("agent", "ACTOR", CLAUSE_KIND)
    assert schema.relation_allowed("count_of", "QUANTITY", "ACTOR")
    assert (CLAUSE_KIND, "PLACE") in schema.candidate_pairs()


def _data():
    return yaml.safe_load(Path("configs/labels.yml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["entities"]["ACTOR"].pop("color"), "lacks color"),
        (lambda d: d["entities"]["PLACE"].__setitem__("key", "a"), "key 'a' used by both"),
        (lambda d: d["relations"]["agent"].__setitem__("pairs", [["CLAUSE", "PERSON"]]), "unknown kind"),
        (lambda d: d["entities"]["DATE"].__setitem__("color", "red"), "not #rrggbb"),
        (lambda d: d.pop("relations"), "missing or malformed"),
    ],
)
def test_bad_schema_is_reported_with_the_file(mutate, message):
    data = _data()
    mutate(data)
    with pytest.raises(SchemaError, match=message) as info:
        parse_schema(data, Path("labels.yml"))
    assert "labels.yml" in str(info.value)


# --- how labels look in Doccano -----------------------------------------------------------

from itertools import combinations  # noqa: E402

from homs_ner.data.colors import ciede2000, contrast_ratio, delta_e_2000, text_color_for  # noqa: E402
from homs_ner.data.schema import MAX_DOCCANO_NAME  # noqa: E402

# CIEDE2000 >= 20 reads as "another colour" at a glance; the issue's look-alikes were 5-12.
MIN_COLOUR_DISTANCE = 20.0


def test_ciede2000_matches_the_published_test_data():
    # Sharma, Wu and Dalal (2005), pairs 1, 7, 13 and 34.
    pairs = [
        ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
        ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
        ((50.0, 2.4900, -0.0010), (50.0, -2.4900, 0.0009), 7.1792),
        ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
    ]
    for first, second, expected in pairs:
        assert round(ciede2000(first, second), 4) == expected


def test_span_label_colours_are_pairwise_distinct():
    labels = load_schema().doccano_span_labels
    closest = min(combinations(labels, 2), key=lambda p: delta_e_2000(p[0].color, p[1].color))
    distance = delta_e_2000(closest[0].color, closest[1].color)
    assert distance >= MIN_COLOUR_DISTANCE, f"{closest[0].name} and {closest[1].name}: {distance:.1f}"


def test_relation_colours_are_pairwise_distinct():
    relations = load_schema().relations
    closest = min(combinations(relations, 2), key=lambda p: delta_e_2000(p[0].color, p[1].color))
    distance = delta_e_2000(closest[0].color, closest[1].color)
    assert distance >= MIN_COLOUR_DISTANCE, f"{closest[0].name} and {closest[1].name}: {distance:.1f}"


def test_label_names_are_readable_on_their_colour():
    for label in [*load_schema().doccano_span_labels, *load_schema().relations]:
        assert contrast_ratio(text_color_for(label.color), label.color) >= 4.5, label.name


def test_clause_labels_show_uncut_in_doccano_and_map_back():
    schema = load_schema()
    shown = [label.name for label in schema.doccano_span_labels]
    assert all(len(name) <= MAX_DOCCANO_NAME for name in shown)
    assert len(set(shown)) == len(shown)
    for clause_type in schema.clause_labels:
        canonical = schema.doccano_clause_label(clause_type)
        short = schema.doccano_name(canonical)
        assert short != canonical and len(short) <= MAX_DOCCANO_NAME
        # Both the new short name and the old CLAUSE:<TYPE> of earlier exports map back.
        assert schema.canonical_span_label(short) == schema.canonical_span_label(canonical) == canonical
    assert schema.doccano_name("ACTOR") == schema.canonical_span_label("ACTOR") == "ACTOR"
    assert schema.canonical_span_label("NOPE") is None


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["clauses"]["types"].__setitem__("RETURN_OF_PEOPLE", d["clauses"]["types"].pop("RETURN")), "longer than 12"),
        (lambda d: d["clauses"]["types"].__setitem__("ACTOR", d["clauses"]["types"].pop("RETURN")), "both as an entity and a clause"),
    ],
)
def test_bad_doccano_names_are_reported(mutate, message):
    data = _data()
    mutate(data)
    with pytest.raises(SchemaError, match=message):
        parse_schema(data, Path("labels.yml"))
