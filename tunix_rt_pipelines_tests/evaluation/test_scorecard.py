"""The scorecard's counts add up, its interval is Wilson's, and it is deterministic."""

import pytest

from tunix_rt_pipelines.evaluation.evaluate import score_records
from tunix_rt_pipelines.evaluation.scorecard import scorecard, wilson_interval

META = [{"section": s, "category": "arithmetic", "difficulty": "easy"} for s in ("core", "core", "edge_case", "core")]


def test_counts_add_up_and_unscored_are_not_zeros():
    card = scorecard(["correct", "invalid", "unscored", "wrong"], META)
    assert card["n_items"] == card["n_scored"] + card["n_unscored"] == 4
    assert (card["n_invalid"], card["primary_score"]) == (1, pytest.approx(1 / 3, abs=1e-6))
    assert card["by_section"]["core"] == {"n": 3, "n_scored": 3, "correct": 1, "mean": pytest.approx(1 / 3, abs=1e-6)}


def test_nothing_scored_has_no_primary_score_and_says_why():
    card = scorecard(["unscored"], META[:1])
    assert card["primary_score"] is None and "no item could be scored" in card["primary_metric"]


@pytest.mark.parametrize("k, n, low, high", [(0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (5, 10, 0.2366, 0.7634)])
def test_wilson_interval_known_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_scoring_the_same_predictions_twice_is_identical():
    records = [{"item_id": f"i{k}", "expected_answer": str(k), "output": f"{k} + 0 = {k}\n#### {k + k % 2}",
                "section": "core"} for k in range(20)]
    assert score_records(records) == score_records(records)
    assert score_records(records)[1]["n_correct"] == 10
