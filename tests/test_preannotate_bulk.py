"""The pure parts of bulk pre-annotation: what the per-project reads say was already done,
and the bounded pool that posts suggestions."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from homs_ner.doccano.preannotate import PREANNOTATION_MARK, bounded_map, examples_with_spans, marked_examples
from homs_ner.doccano.types import DoccanoError


def comment(example: int, username: str, text: str) -> dict:
    return {"id": example, "example": example, "user": 1, "username": username, "text": text, "created_at": ""}


def test_only_the_annotators_own_marks_count() -> None:
    comments = [
        comment(1, "rana", f"{PREANNOTATION_MARK} by m: 2 spans"),
        comment(2, "omar", f"{PREANNOTATION_MARK} by m: 2 spans"),  # someone else's suggestions
        comment(3, "rana", f"about the {PREANNOTATION_MARK}"),  # a note that only mentions it
    ]
    assert marked_examples(comments, "rana") == {1}


def test_spans_are_read_from_the_annotators_file_or_a_collaborative_all() -> None:
    records = {"rana": [{"id": 1, "entities": [{"id": 9}]}, {"id": 2, "entities": []}], "omar": [{"id": 2, "entities": [{"id": 8}]}]}
    assert examples_with_spans(records, "rana") == {1}
    assert examples_with_spans({"all": [{"id": 5, "entities": [{"id": 1}]}]}, "rana") == {5}
    with pytest.raises(DoccanoError, match="no work of 'sami'"):
        examples_with_spans(records, "sami")


def test_bounded_map_keeps_order_and_reads_at_most_a_window_ahead() -> None:
    consumed: list[int] = []

    def items():
        for i in range(20):
            consumed.append(i)
            yield i

    with ThreadPoolExecutor(2) as pool:
        for i, (item, result) in enumerate(bounded_map(pool, lambda x: x * x, items(), window=3)):
            assert (item, result) == (i, i * i)
            assert len(consumed) <= i + 3


def test_bounded_map_stops_at_the_first_failure() -> None:
    started: list[int] = []

    def work(x: int) -> int:
        started.append(x)
        if x == 1:
            raise DoccanoError("POST failed")
        return x

    with ThreadPoolExecutor(1) as pool, pytest.raises(DoccanoError, match="POST failed"):
        list(bounded_map(pool, work, range(100), window=2))
    assert len(started) <= 3
