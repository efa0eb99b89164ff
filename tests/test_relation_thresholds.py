"""Per-label relation thresholds: chosen on dev to maximise F1, ties keep the default."""

from __future__ import annotations

from homs_ner.pipeline.relation_thresholds import best_threshold, f1_at


def test_f1_counts_gold_relations_no_candidate_reaches() -> None:
    scored = [(0.9, True), (0.8, False)]
    assert f1_at(scored, n_gold=1, threshold=0.85) == 1.0
    assert f1_at(scored, n_gold=3, threshold=0.85) == 0.5  # two gold relations had no candidate


def test_best_threshold_moves_where_the_scores_say() -> None:
    scored = [(0.3, True), (0.35, True), (0.2, False), (0.1, False)]
    threshold, f1 = best_threshold(scored, n_gold=2, default=0.5)
    assert (threshold, f1) == (0.25, 1.0)


def test_without_evidence_the_default_stays() -> None:
    assert best_threshold([], n_gold=0, default=0.5) == (0.5, 0.0)
