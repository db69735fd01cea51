"""The scorecard's counts add up, its interval is Wilson's, and it is deterministic."""

import json

import pytest

from tunix_rt_pipelines.evaluation.answers import score_items
from tunix_rt_pipelines.evaluation.evaluate import score_records
from tunix_rt_pipelines.evaluation.scorecard import scorecard, wilson_interval

META = [{"section": s, "category": "arithmetic", "difficulty": "easy"} for s in ("core", "core", "edge_case", "core")]


def test_counts_add_up_and_unscored_are_not_zeros():
    card = scorecard(["correct", "invalid", "unscored", "wrong"], META)
    assert card["n_items"] == card["n_scored"] + card["n_unscored"] == 4
    assert card["n_scored"] == card["n_correct"] + card["n_wrong"] + card["n_invalid"] == 3
    assert (card["n_invalid"], card["primary_score"]) == (1, pytest.approx(1 / 3, abs=1e-6))
    assert card["primary_metric"] == "answer_correctness@v1"


def test_breakdowns_count_and_average_each_group():
    card = scorecard(["correct", "invalid", "unscored", "wrong"], META)
    assert card["by_section"]["core"] == {"correct": 1, "mean": 0.333333, "n": 3, "n_invalid": 1, "n_scored": 3}
    assert card["by_section"]["edge_case"] == {"correct": 0, "mean": None, "n": 1, "n_invalid": 0, "n_scored": 0}
    assert card["by_difficulty"]["easy"]["n"] == card["by_category"]["arithmetic"]["n"] == 4


def test_unscored_reasons_are_tallied():
    items = ["correct", {"outcome": "unscored", "reason": "judge unreachable"}, {"outcome": "unscored", "reason": None}]
    card = scorecard(items, META[:3])
    assert card["unscored_reasons"] == {"judge unreachable": 1, "unspecified": 1}
    assert (card["n_unscored"], card["mean"]) == (2, 1.0)


def test_nothing_scored_has_no_primary_score_and_says_why():
    card = scorecard(["unscored"], META[:1])
    assert card["primary_score"] is None and card["ci95"] is None
    assert "no item could be scored" in card["primary_metric"]


def test_unknown_outcome_and_length_mismatch_are_refused():
    with pytest.raises(ValueError):
        scorecard(["skipped"], META[:1])
    with pytest.raises(ValueError):
        scorecard(["correct"], META)


def test_item_scores_are_accepted_as_they_come_from_the_judge():
    scores = score_items([{"output": "#### 4", "expected_answer": "4"}, {"output": "?", "expected_answer": "4"}])
    card = scorecard(scores, META[:2])
    assert (card["n_correct"], card["n_invalid"], card["stddev"]) == (1, 1, 0.5)


@pytest.mark.parametrize("k, n, low, high", [(0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (5, 10, 0.2366, 0.7634),
                                             (1, 1, 0.2065, 1.0), (81, 263, 0.2553, 0.3662)])
def test_wilson_interval_known_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_wilson_interval_without_items_is_uninformative():
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_scorecard_keys_are_sorted_and_json_stable():
    card = scorecard(["wrong", "correct", "unscored", "invalid"], list(reversed(META)))
    assert list(card) == sorted(card) and list(card["by_section"]) == sorted(card["by_section"])
    assert json.dumps(card) == json.dumps(scorecard(["wrong", "correct", "unscored", "invalid"], list(reversed(META))))


def test_scoring_the_same_predictions_twice_is_identical():
    records = [{"item_id": f"i{k}", "expected_answer": str(k), "output": f"{k} + 0 = {k}\n#### {k + k % 2}",
                "section": "core"} for k in range(20)]
    assert score_records(records) == score_records(records)
    assert score_records(records)[1]["n_correct"] == 10


def test_trace_structure_is_summarised_beside_the_primary_score():
    records = [{"item_id": "a", "expected_answer": "7", "output": "3 + 4 = 7\nso it is 7\n#### 7"},
               {"item_id": "b", "expected_answer": "7", "output": "7 7 7 7 7 7 7 7 7 7 7 7"}]
    ts = score_records(records)[1]["trace_structure"]
    assert ts["n"] == 2 and ts["steps_present"] == 0.5 and ts["no_repetition_loop"] == 0.5


def test_lm_eval_strict_and_flexible_are_their_own_columns():
    records = [{"item_id": "a", "expected_answer": "7", "output": "3 + 4 = 7\n#### 7"},
               {"item_id": "b", "expected_answer": "7", "output": "so the answer is 7"},
               {"item_id": "c", "expected_answer": "7", "output": "no idea"}]
    assert score_records(records)[1]["lm_eval"] == {"n": 3, "strict_match": 0.333333, "flexible_extract": 0.666667}
