"""The label schema (`configs/labels.yml`) as typed, immutable objects.

Every other module asks this one for labels, colours, keys and the allowed relation pairs,
so that adding or renaming a label is a one-file change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

CLAUSE_KIND = "CLAUSE"
SpanKind = Literal["entity", "clause"]
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_KEY = re.compile(r"^[0-9a-z]$")


class SchemaError(ValueError):
    """The schema file is malformed; the message names the file and the offending entry."""


@dataclass(frozen=True)
class LabelInfo:
    """One label as Doccano and the guidelines need it."""

    name: str
    en: str
    ar: str
    color: str
    key: str


@dataclass(frozen=True)
class RelationInfo(LabelInfo):
    """A relation label with the (head kind, child kind) pairs it may connect."""

    pairs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Schema:
    """Entities, clause types and relations, read from one YAML file."""

    entities: tuple[LabelInfo, ...]
    clause_types: tuple[LabelInfo, ...]
    relations: tuple[RelationInfo, ...]
    span_group: str
    doccano_prefix: str
    path: Path

    @property
    def entity_labels(self) -> list[str]:
        return [e.name for e in self.entities]

    @property
    def clause_labels(self) -> list[str]:
        return [c.name for c in self.clause_types]

    @property
    def relation_labels(self) -> list[str]:
        return [r.name for r in self.relations]

    def doccano_clause_label(self, clause_type: str) -> str:
        return f"{self.doccano_prefix}{clause_type}"

    @property
    def doccano_span_labels(self) -> list[LabelInfo]:
        """Span label types as Doccano shows them: entities, then `CLAUSE:<TYPE>`."""
        clauses = [
            LabelInfo(self.doccano_clause_label(c.name), c.en, c.ar, c.color, c.key)
            for c in self.clause_types
        ]
        return [*self.entities, *clauses]

    @cached_property
    def _pairs(self) -> dict[str, frozenset[tuple[str, str]]]:
        return {r.name: frozenset(r.pairs) for r in self.relations}

    def parse_span_label(self, label: str) -> tuple[SpanKind, str] | None:
        """Map a Doccano/Prodigy span label to (kind, spaCy label); None if unknown."""
        if label in self.entity_labels:
            return "entity", label
        if label.startswith(self.doccano_prefix):
            clause_type = label[len(self.doccano_prefix) :]
            if clause_type in self.clause_labels:
                return "clause", clause_type
        return None

    def relation_allowed(self, label: str, head_kind: str, child_kind: str) -> bool:
        return (head_kind, child_kind) in self._pairs.get(label, frozenset())

    def candidate_pairs(self) -> frozenset[tuple[str, str]]:
        """Every (head kind, child kind) that some relation allows: the relation model's candidates."""
        return kind_pairs(self._pairs)


def kind_pairs(pairs: Mapping[str, frozenset[tuple[str, str]]]) -> frozenset[tuple[str, str]]:
    """(head kind, child kind) pairs some relation label allows: the only pairs worth scoring."""
    return frozenset(p for label_pairs in pairs.values() for p in label_pairs)


def _label(name: str, raw: object, where: str) -> dict:
    if not isinstance(raw, dict):
        raise SchemaError(f"{where}: label {name!r} must be a mapping")
    missing = [k for k in ("en", "ar", "color", "key") if k not in raw]
    if missing:
        raise SchemaError(f"{where}: label {name!r} lacks {', '.join(missing)}")
    if not _COLOR.match(str(raw["color"])):
        raise SchemaError(f"{where}: label {name!r} colour {raw['color']!r} is not #rrggbb")
    if not _KEY.match(str(raw["key"])):
        raise SchemaError(f"{where}: label {name!r} key {raw['key']!r} is not one of 0-9, a-z")
    return {"name": name, **{k: str(raw[k]).strip() for k in ("en", "ar", "color", "key")}}


def _unique_keys(labels: list[LabelInfo], where: str) -> None:
    seen: dict[str, str] = {}
    for label in labels:
        if label.key in seen:
            raise SchemaError(f"{where}: key {label.key!r} used by both {seen[label.key]} and {label.name}")
        seen[label.key] = label.name


def parse_schema(data: dict, path: Path) -> Schema:
    """Build and check a Schema from the parsed YAML of `path`."""
    where = str(path)
    try:
        entities = tuple(LabelInfo(**_label(n, v, where)) for n, v in data["entities"].items())
        clauses_cfg = data["clauses"]
        clause_types = tuple(
            LabelInfo(**_label(n, v, where)) for n, v in clauses_cfg["types"].items()
        )
        relations = []
        for name, raw in data["relations"].items():
            pairs = tuple(tuple(p) for p in raw.get("pairs", []))
            relations.append(RelationInfo(**_label(name, raw, where), pairs=pairs))  # type: ignore[arg-type]
    except (KeyError, AttributeError, TypeError) as err:
        raise SchemaError(f"{where}: missing or malformed section: {err}") from err
    kinds = {e.name for e in entities} | {CLAUSE_KIND}
    for rel in relations:
        if not rel.pairs:
            raise SchemaError(f"{where}: relation {rel.name!r} lists no pairs")
        for head, child in rel.pairs:
            if head not in kinds or child not in kinds:
                raise SchemaError(f"{where}: relation {rel.name!r} pair ({head}, {child}) names an unknown kind")
    schema = Schema(
        entities=entities,
        clause_types=clause_types,
        relations=tuple(relations),
        span_group=str(clauses_cfg.get("span_group", "clauses")),
        doccano_prefix=str(clauses_cfg.get("doccano_prefix", "CLAUSE:")),
        path=path,
    )
    _unique_keys(list(schema.doccano_span_labels), f"{where} (span labels)")
    _unique_keys(list(schema.relations), f"{where} (relation labels)")
    return schema


def load_schema(path: str | Path) -> Schema:
    """Read and check the schema file (the repository's is `configs/labels.yml`)."""
    import yaml  # here, not at the top: the command line imports this module for --help

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise SchemaError(f"{path}: schema file not found") from err
    except yaml.YAMLError as err:
        raise SchemaError(f"{path}: not valid YAML: {err}") from err
    return parse_schema(data, path)
