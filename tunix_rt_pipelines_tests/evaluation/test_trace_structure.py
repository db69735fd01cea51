"""trace_structure@v1: steps, a stated answer that follows from the last step, and no loops."""

from tunix_rt_pipelines.evaluation.trace_structure import METRIC, ends_in_loop, score_trace, score_traces

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
