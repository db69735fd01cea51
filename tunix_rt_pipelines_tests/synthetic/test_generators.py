import re
from collections import Counter
from fractions import Fraction

import pytest

from tunix_rt_pipelines.synthetic.arithmetic import generate_arithmetic
from tunix_rt_pipelines.synthetic.card_game import RANK_VALUE, SUITS, generate_card_games
from tunix_rt_pipelines.synthetic.dev_set import DevSetSpec, build_dev_set
from tunix_rt_pipelines.synthetic.edge_cases import generate_edge_cases
from tunix_rt_pipelines.synthetic.held_out import shipped_eval_prompts


def test_same_seed_same_traces_other_seed_other_traces():
    assert generate_arithmetic(30, 1) == generate_arithmetic(30, 1)
    assert generate_arithmetic(30, 1)[0].content_hash != generate_arithmetic(30, 2)[0].content_hash


def test_expression_answers_are_right():
    for t in generate_arithmetic(60, 3):
        if "expression" in t.metadata.tags:
            a, b, c, d = map(int, re.findall(r"\d+", t.prompt))
            assert int(t.final_answer) == (a + b) * c - d


def test_every_arithmetic_step_is_true():
    checked = 0
    for t in generate_arithmetic(120, 4):
        for step in t.steps:
            for lhs, rhs in re.findall(r"(\d+(?: [×+−÷] \d+)+) = (\d+)", step):
                expr = lhs.replace("×", "*").replace("−", "-").replace("÷", "//")
                assert eval(expr) == int(rhs), step  # noqa: S307 - digits and operators only
                checked += 1
    assert checked > 250


def _winner(prompt: str) -> str:
    p1, p2 = re.search(r"between (\w+) and (\w+)", prompt).groups()
    wins = Counter()
    for a_rank, a_suit, b_rank, b_suit in re.findall(r"Round \d+: \w+ (\w+)(.), \w+ (\w+)(.)", prompt):
        a = (RANK_VALUE[a_rank], SUITS.index(a_suit))
        b = (RANK_VALUE[b_rank], SUITS.index(b_suit))
        wins[p1 if a > b else p2] += 1
    return max((p1, p2), key=lambda p: wins[p])


def test_card_game_winner_follows_from_the_deal():
    games = generate_card_games(60, 5)
    assert {g.metadata.difficulty for g in games} == {"easy", "medium", "hard"}
    for g in games:
        assert g.final_answer == _winner(g.prompt)


def test_fraction_answers_are_in_lowest_terms():
    for t in generate_edge_cases(90, 6):
        if "fraction" in t.metadata.tags and "/" in t.final_answer:
            n, d = map(int, t.final_answer.split("/"))
            assert Fraction(n, d).denominator == d


def test_dev_set_has_the_seeds_composition_and_is_deterministic():
    traces = build_dev_set()
    assert len(traces) == 550
    assert Counter(t.metadata.category for t in traces) == {"arithmetic": 385, "card_game": 110, "edge_case": 55}
    assert len({t.content_hash for t in traces}) == 550
    assert [t.content_hash for t in build_dev_set()] == [t.content_hash for t in traces]


def test_dev_set_of_any_seed_leaves_eval_prompts_out_and_keeps_its_composition():
    held_out = shipped_eval_prompts()
    spec = DevSetSpec(seed=1)  # this seed draws three eval-set prompts
    assert {t.prompt for t in build_dev_set(spec)} & held_out
    dev = build_dev_set(spec, held_out=held_out)
    assert not {t.prompt for t in dev} & held_out
    assert Counter(t.metadata.category for t in dev) == Counter(t.metadata.category for t in build_dev_set(spec))
    assert build_dev_set(held_out=held_out) == build_dev_set()  # seed 42's dev set is what the eval set avoids


def test_dev_set_size_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        DevSetSpec(size=-5)
