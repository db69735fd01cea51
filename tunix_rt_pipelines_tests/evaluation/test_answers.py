"""answer_correctness@v1: the last marker wins, think blocks are ignored, invalid is not wrong."""

import pytest

from tunix_rt_pipelines.evaluation.answers import extract, score_item


def test_last_marker_wins_over_numbers_recited_before():
    assert extract("12 + 5 = 17\n#### 17\nCheck: 17 - 5 = 12") == ("17", "marker_hash")
    assert score_item("Answer: 3\nwait, recount\nAnswer: 4", "4").outcome == "correct"


def test_think_block_is_not_the_answer():
    assert extract("<think>maybe 99</think>The total is 42.") == ("42", "last_number")
    assert score_item("<think>the answer is 7 ... still thinking", "7").outcome == "invalid"


def test_no_answer_is_invalid_not_wrong():
    s = score_item("I cannot tell.", "5")
    assert (s.outcome, s.extracted, s.extractor) == ("invalid", None, "none")
    assert score_item("#### 6", "5").outcome == "wrong"


@pytest.mark.parametrize("got, expected", [
    ("#### 1,234", "1234"), ("#### $1234.00", "1234"), ("#### 7.", "7"), ("#### −3", "-3"),
    ("#### 0.5", "1/2"), ("\\boxed{\\frac{1}{2}} then \\boxed{3/6}", "1/2"), ("Answer: **Alice**", "alice"),
])
def test_normalisation_makes_equal_answers_equal(got, expected):
    assert score_item(got, expected).outcome == "correct"


def test_percent_is_not_the_bare_number():
    assert score_item("#### 25%", "25").outcome == "wrong"


def test_boxed_with_nested_braces():
    assert extract("so \\boxed{\\dfrac{3}{4}}") == ("\\dfrac{3}{4}", "boxed")


def test_lm_eval_strict_takes_the_first_marker_and_flexible_the_last_number():
    s = score_item("#### 5\nno, 6 is right: #### 6", "6")
    assert (s.outcome, s.strict_match, s.flexible_match) == ("correct", False, True)
