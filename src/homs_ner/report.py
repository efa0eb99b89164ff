"""Markdown report tables, shared by every stage that writes a report (corpus statistics,
agreement, evaluation, experiments, benchmark, layer probe)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def pct(value: float | None) -> str:
    """A share as a percentage with one decimal; "n/a" where it is undefined."""
    return "n/a" if value is None else f"{100 * value:.1f}"


def row(cells: Iterable[object]) -> str:
    """One table row: ``| a | b |`` (an empty cell as ``| |``)."""
    return "|" + "|".join(f" {cell} " if str(cell) else " " for cell in cells) + "|"


def table(header: Sequence[object], rows: Iterable[Iterable[object]], *, spaced_rule: bool = False) -> list[str]:
    """Header, rule and rows; the rule ``|---|---|``, or ``| --- | --- |`` with `spaced_rule`."""
    rule = row(["---"] * len(header)) if spaced_rule else "|" + "---|" * len(header)
    return [row(header), rule, *map(row, rows)]
