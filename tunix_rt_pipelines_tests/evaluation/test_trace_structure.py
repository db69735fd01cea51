"""trace_structure@v1: steps, a stated answer that follows from the last step, and no loops."""

import random

from tunix_rt_pipelines.evaluation.trace_structure import (
    MAX_LOOP_PERIOD,
    METRIC,
    MIN_LOOP_TOKENS,
    ends_in_loop,
    has_repeated_lines,
    score_trace,
    score_traces,
)

GOOD = "The pens cost 5 × 3 = 15 dollars.\nThe change is 20 − 15 = 5 dollars.\n#### 5"


def test_a_worked_answer_scores_full_marks():
    s = score_trace(GOOD)
    assert (s.steps_present, s.final_answer_stated, s.answer_consistent_with_last_step, s.no_repetition_loop) == (
        True, True, True, True)
    assert (s.score, s.metric) == (1.0, METRIC)


def test_a_bare_answer_has_no_steps():
    s = score_trace("#### 5")
    assert (s.steps_present, s.final_answer_stated, s.answer_consistent_with_last_step) == (False, True, False)


def test_an_answer_that_does_not_follow_from_the_last_step_is_inconsistent():
    assert not score_trace(GOOD.replace("#### 5", "#### 6")).answer_consistent_with_last_step


def test_the_text_before_a_marker_on_its_line_is_the_last_step():
    s = score_trace("3 + 4 = 7\nSo 7 + 1 = 8. Answer: 8")
    assert s.steps_present and s.answer_consistent_with_last_step


def test_text_answers_are_consistent_when_the_last_step_names_them():
    trace = "Round 1: K against 3, so Ben wins the round.\nBen won 1 round(s), so Ben wins the match.\n#### Ben"
    assert score_trace(trace).answer_consistent_with_last_step
    assert not score_trace(trace.replace("#### Ben", "#### Ana")).answer_consistent_with_last_step


def test_no_marker_means_the_answer_was_not_stated():
    s = score_trace("5 × 3 = 15\n20 − 15 = 5")
    assert (s.final_answer_stated, s.answer_consistent_with_last_step, s.score) == (False, True, 0.75)


def test_repeated_lines_and_trailing_loops_are_caught():
    assert not score_trace("add 2\nadd 2\nadd 2\n#### 6").no_repetition_loop
    assert not score_trace(GOOD + "\nand then and then and then and th").no_repetition_loop
    assert ends_in_loop("1 2 3 1 2 3 1 2 3".split()) and not ends_in_loop("1 2 3 1 2 3".split())


def test_a_loop_inside_an_unclosed_think_block_still_counts():
    s = score_trace("<think>so so so so so so so so")
    assert (s.no_repetition_loop, s.score) == (False, 0.0)


def test_scoring_traces_twice_is_identical():
    outputs = [GOOD, "#### 5", "", "no answer at all"]
    assert score_traces(outputs) == score_traces(outputs)


def _ends_in_loop_by_definition(tokens: list[str]) -> bool:
    """The docstring's rule, checked period by period over the whole list."""
    total = len(tokens)
    return any(
        max(3 * n, MIN_LOOP_TOKENS) <= total
        and all(tokens[i] == tokens[i + n] for i in range(total - max(3 * n, MIN_LOOP_TOKENS), total - n))
        for n in range(1, MAX_LOOP_PERIOD + 1))


def test_ends_in_loop_agrees_with_its_definition_on_random_token_runs():
    r = random.Random(5)
    for _ in range(5000):
        unit = [r.choice("abc") for _ in range(r.randint(1, 18))]
        tokens = [r.choice("abcd") for _ in range(r.randint(0, 8))] + unit * r.randint(1, 4) + unit[:r.randint(0, 17)]
        assert ends_in_loop(tokens) == _ends_in_loop_by_definition(tokens), tokens


def test_a_loop_of_the_longest_period_counts_after_a_long_output_and_one_token_short_does_not():
    head = "\n".join(f"{i} + 1 = {i + 1}" for i in range(300)) + "\n"
    unit = [f"w{i}" for i in range(MAX_LOOP_PERIOD)]
    assert not score_trace(head + " ".join(unit * 3)).no_repetition_loop
    assert score_trace(head + " ".join((unit * 3)[:-2])).no_repetition_loop  # 46 tokens, even without the last: no loop


def test_repeated_lines_ignore_blank_lines_and_surrounding_spaces():
    assert not has_repeated_lines(["", "", "", "x", " x"])
    assert has_repeated_lines(["x", " x ", "x\t"])
