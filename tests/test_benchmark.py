"""The benchmark's multi-process inference: shards balanced by length, processes timed together."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from homs_ner.evaluate.benchmark import inference, shards
from tiny_corpus import DATA


def test_shards_deal_every_text_once_and_balance_length() -> None:
    texts = ["a" * n for n in (90, 10, 50, 40, 30, 20, 60)]
    dealt = shards(texts, 2)
    assert sorted(sum(dealt, [])) == sorted(texts)
    assert [sum(map(len, shard)) for shard in dealt] == [150, 150]


def test_shards_never_empty() -> None:
    assert shards(["only one"], 2) == [["only one"]]


def test_two_processes_count_every_word_once(tiny_model: Path) -> None:
    """One and two processes see the same words; two report one torch thread each and both peaks."""
    texts = [row[0] for row in DATA] * 3
    one = inference(str(tiny_model), texts, repeats=1, processes=1)
    two = inference(str(tiny_model), texts, repeats=1, processes=2)
    assert one["words"] == two["words"] > 0
    assert two["processes"] == 2 and two["threads"] == max(1, (os.cpu_count() or 1) // 2)
    assert two["peak_rss_mb"] > one["peak_rss_mb"]


def test_a_failing_process_is_an_error_not_a_hang(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="inference process failed|failed"):
        inference(str(tmp_path / "no-such-pipeline"), ["نص"] * 4, repeats=1, processes=2)
