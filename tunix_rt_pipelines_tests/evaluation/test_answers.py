"""answer_correctness@v1: the last marker wins, think blocks are ignored, invalid is not wrong."""

import random
import re

import pytest

from tunix_rt_pipelines.evaluation.answers import METRIC, ItemScore, extract, score_item, score_items
from tunix_rt_pipelines.evaluation.extraction import _NUMBER, DASHES, last_number, locate, strip_think
from tunix_rt_pipelines.evaluation.lm_eval import flexible_key, strict_key
from tunix_rt_pipelines.evaluation.normalize import same_answer


def test_last_marker_wins_over_numbers_recited_before():
    assert extract("12 + 5 = 17\n#### 17\nCheck: 17 - 5 = 12") == ("17", "marker_hash")
    assert score_item("Answer: 3\nwait, recount\nAnswer: 4", "4").outcome == "correct"


def test_last_marker_wins_across_marker_kinds():
    assert extract("#### 3\nHmm. \\boxed{4}") == ("4", "boxed")
    assert extract("\\boxed{4} Final answer: 5") == ("5", "marker_answer")
    assert extract("Answer: 4\n#### 6") == ("6", "marker_hash")


def test_marker_at_end_of_line_takes_the_next_line():
    assert extract("steps\n####\n 42") == ("42", "marker_hash")
    assert extract("**Answer:** 42") == ("42", "marker_answer")


def test_think_block_is_not_the_answer():
    assert extract("<think>maybe 99</think>The total is 42.") == ("42", "last_number")
    assert score_item("<think>the answer is 7 ... still thinking", "7").outcome == "invalid"


def test_stray_closing_think_drops_the_reasoning_before_it():
    assert strip_think("#### 3 hmm</think>\n#### 4") == "\n#### 4"
    assert extract("99 bottles\n</think>\nno number here") == (None, "none")


def test_strip_think_follows_its_definition_on_random_strings():
    # The definition: every block "<think…>…</think>" (lazy) replaced by a newline, then all
    # up to the last stray closer dropped, then all from the first unclosed opener.
    block = re.compile(r"<think\b[^>]*>.*?</think\s*>", re.DOTALL | re.IGNORECASE)
    closer = re.compile(r"</think\s*>", re.IGNORECASE)
    opener = re.compile(r"<think\b[^>]*>", re.IGNORECASE)

    def reference(output: str) -> str:
        if "<" not in output or "think" not in output.lower():
            return output
        text = block.sub("\n", output)
        closers = list(closer.finditer(text))
        text = text[closers[-1].end():] if closers else text
        first = opener.search(text)
        return text[: first.start()] if first else text

    r = random.Random(4)
    pieces = ["<think>", "</think>", "<THINK a=1>", "</Think \n>", "<thinking>", "<think", "</think", "x", "7", "\n",
              ">", "<", " "]
    for _ in range(5000):
        output = "".join(r.choice(pieces) for _ in range(r.randint(0, 10)))
        assert strip_think(output) == reference(output), output


def test_answer_before_an_unclosed_think_still_counts():
    assert extract("#### 8\n<think>or was it 9") == ("8", "marker_hash")


def test_no_answer_is_invalid_not_wrong():
    s = score_item("I cannot tell.", "5")
    assert (s.outcome, s.extracted, s.extractor) == ("invalid", None, "none")
    assert score_item("[invalid]", "5").outcome == "invalid"
    assert score_item("#### 6", "5").outcome == "wrong"


def test_empty_and_missing_output_are_invalid():
    assert score_item("", "5").outcome == "invalid"
    assert score_item(None, "5").outcome == "invalid"


@pytest.mark.parametrize("got, expected", [
    ("#### 1,234", "1234"), ("#### $1234.00", "1234"), ("#### 7.", "7"), ("#### 7.0", "7"), ("#### −3", "-3"),
    ("#### –3", "-3"), ("#### £12", "12"), ("#### 0.5", "1/2"), ("#### 3/6", "0.5"),
    ("\\boxed{\\frac{1}{2}} then \\boxed{3/6}", "1/2"), ("Answer: **Alice**", "alice"), ("ANSWER:  ben", "Ben"),
    ("#### 47.5 litres", "47.5"), ("#### x = 5", "5"), ("#### 1e3", "1000"), ("#### 25%", "25"),
    ("#### Yes.", "yes"), ("#### -0", "0"),
])
def test_normalisation_makes_equal_answers_equal(got, expected):
    assert score_item(got, expected).outcome == "correct"


@pytest.mark.parametrize("got, expected", [
    ("#### 5 or 6", "5"), ("#### 25%", "0.25"), ("#### 1", "yes"), ("#### Alicia", "Alice"), ("#### 1,2", "12"),
    ("#### 1/0", "0"), ("#### 2nd", "2"),
])
def test_normalisation_keeps_different_answers_different(got, expected):
    assert score_item(got, expected).outcome == "wrong"


def test_boxed_with_nested_braces():
    assert extract("so \\boxed{\\dfrac{3}{4}}") == ("\\dfrac{3}{4}", "boxed")
    assert score_item("so \\boxed{\\dfrac{3}{4}}", "0.75").outcome == "correct"


def test_unclosed_box_is_ignored():
    assert extract("it is 12, so \\boxed{1") == ("1", "last_number")


def test_last_number_reads_a_minus_sign_but_not_a_hyphen():
    assert extract("it drops to -24") == ("-24", "last_number")
    assert extract("so 30-6") == ("6", "last_number")
    assert extract("the city has 6,146,249 people") == ("6,146,249", "last_number")


def test_last_number_is_the_last_match_over_the_whole_text():
    # last_number searches only the run around the last digit; the definition is every match.
    r = random.Random(3)
    pieces = ["1", "23", "4,567", ",", ".", "/", "-", "−", "–", " ", "\n", "a", ")", "٣", "²", "1,23", ".5", "x-"]
    for _ in range(5000):
        text = "".join(r.choice(pieces) for _ in range(r.randint(0, 14)))
        matches = list(_NUMBER.finditer(text))
        want = (matches[-1].group().translate(DASHES), "last_number", matches[-1].start()) if matches else (None, "none", -1)
        assert last_number(text) == want, text


def test_last_number_folds_a_unicode_minus_in_non_ascii_text():
    assert extract("3 × 4 = 12 and 5 − 8 = −3") == ("-3", "last_number")  # the "−" of "5 − 8" is a minus too
    assert extract("été: −7 °C\nthen ‒ nothing") == ("-7", "last_number")


def test_answer_marker_needs_a_word_boundary_and_the_last_one_wins():
    assert extract("Ranswer: 5") == ("5", "last_number")
    assert extract("Answer: 3\nANSWER: 4\nanswer: 5") == ("5", "marker_answer")
    assert extract("Answer: 3\nthe answer: ") == ("3", "marker_answer")  # an empty marker is skipped


def test_a_final_hash_marker_beats_earlier_markers_of_other_kinds():
    for earlier in ("Answer: 5", "\\boxed{5}", "**Final answer:** 5."):
        assert score_item(f"{earlier}\nwait, no.\n#### 7", "7") == ItemScore("correct", "7", "marker_hash", True, True)


def test_item_score_records_how_the_answer_was_found():
    s = score_item("2 + 2 = 4\n#### 4", "4")
    assert s == ItemScore("correct", "4", "marker_hash", True, True)
    assert s.metric == METRIC == "answer_correctness@v1"


# lm-eval-harness GSM8K, worked by hand from its yaml: strict takes the first "#### (-?[0-9.,]+)",
# flexible the last "(-?[$0-9.,]{2,})|(-?[0-9]+)"; both drop "," "$", up to "#### " and a trailing ".".
@pytest.mark.parametrize("output, expected, strict, flexible", [
    ("Natalia sold 48/2 = 24 clips.\nAltogether 48+24 = 72 clips.\n#### 72", "72", True, True),
    ("The answer is $1,200.", "1200", False, True),  # flexible "$1,200." -> "1200"
    ("#### 5\nno, 6 is right: #### 6", "6", False, True),  # strict keeps the first marker
    ("<think>72</think> I am not sure", "72", False, True),  # peers do not strip think blocks
    ("Answer: 72. Check: 72 - 70 = 2", "72", False, False),  # flexible picks the check's 2
    ("#### 3.50", "3.5", False, False),  # exact strings: 3.50 is not 3.5
    ("so 7.", "7", False, True),  # flexible "7." (two chars of the class), then the dot goes
    ("#### -5", "-5", True, True),
])
def test_strict_and_flexible_reproduce_lm_eval(output, expected, strict, flexible):
    s = score_item(output, expected)
    assert (s.strict_match, s.flexible_match) == (strict, flexible)


def test_our_extraction_fixes_what_lm_eval_gets_wrong():
    assert score_item("Answer: 72. Check: 72 - 70 = 2", "72").outcome == "correct"
    assert score_item("#### 3.50", "3.5").outcome == "correct"
    assert score_item("<think>72</think> I am not sure", "72").outcome == "invalid"


def _ignore(s: str) -> str:
    for r in (",", "\\$", "(?s).*#### ", "\\.$"):
        s = re.sub(r, "", s)
    return s.lower()


def _lm_eval_keys(output: str) -> tuple[str, str]:
    """(strict, flexible): lm-eval's RegexFilter answers with exact_match's ignores applied, written
    the way lm-eval writes them."""
    def pick(pattern: str, group_select: int) -> str:
        match = re.findall(pattern, output)
        if not match:
            return "[invalid]"
        match = match[group_select]
        if isinstance(match, tuple):
            match = [m for m in match if m]
            match = match[0] if match else "[invalid]"
        return match.strip()

    return _ignore(pick(r"#### (\-?[0-9\.\,]+)", 0)), _ignore(pick(r"(-?[$0-9.,]{2,})|(-?[0-9]+)", -1))


def _lm_eval_reference(output: str, expected: str) -> tuple[bool, bool]:
    """lm-eval's (strict, flexible) exact_match of ``output`` against ``expected``."""
    strict, flexible = _lm_eval_keys(output)
    return strict == _ignore(expected), flexible == _ignore(expected)


def _random_outputs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    r = random.Random(seed)
    pieces = ["12", "-3", "1,200", "$5", "4.", "0.5", " ", "\n", "#### ", "####", "##### ", "Answer: ", "x", "-",
              ".", ",", "$", "<think>", "</think>", "\\boxed{7}", "−2", "**", "= 9", "3/6"]
    return [("".join(r.choice(pieces) for _ in range(r.randint(0, 12))), r.choice(["12", "-3", "1200", "5", "7", "9"]))
            for _ in range(n)]


def test_lm_eval_matches_agree_with_lm_eval_on_random_strings():
    for output, expected in _random_outputs(3000):
        s = score_item(output, expected)
        assert (s.strict_match, s.flexible_match) == _lm_eval_reference(output, expected), output
        assert (strict_key(output), flexible_key(output)) == _lm_eval_keys(output), output


def test_fast_path_agrees_with_the_general_path():
    for output, expected in _random_outputs(3000, seed=1) + [("1+1=2\n#### 2", "2"), ("#### 007", "7")]:
        answer, extractor, _ = locate(strip_think(output))
        s = score_item(output, expected)
        outcome = "invalid" if answer is None else "correct" if same_answer(answer, expected) else "wrong"
        assert (s.outcome, s.extracted, s.extractor) == (outcome, answer, extractor), output


def test_scoring_twice_gives_identical_results():
    records = [{"output": o, "expected_answer": e} for o, e in _random_outputs(500, seed=2)]
    assert score_items(records) == score_items(records)
