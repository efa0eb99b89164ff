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
