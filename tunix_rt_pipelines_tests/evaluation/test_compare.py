"""Comparing evaluations item by item: flips in both directions and an exact McNemar p-value."""

import pytest

from tunix_rt_pipelines.evaluation.compare import compare_many, compare_pair, mcnemar_exact


def items(outcomes: str) -> dict:
    names = {"c": "correct", "w": "wrong", "i": "invalid", "u": "unscored"}
    return {f"i{k}": {"outcome": names[o], "section": "core" if k % 2 else "edge_case"} for k, o in enumerate(outcomes)}


def test_flips_are_listed_by_item_and_invalid_counts_as_not_right():
    r = compare_pair(items("ccwwi"), items("cwcci"))
    assert (r["right_to_wrong"], r["wrong_to_right"]) == (["i1"], ["i2", "i3"])
    assert r["n_paired"] == 5 and r["delta"] == pytest.approx(0.2)


def test_unscored_items_are_left_out_of_the_pairs():
    assert compare_pair(items("cu"), items("cc"))["n_paired"] == 1


@pytest.mark.parametrize("b, c, p", [(0, 0, 1.0), (0, 10, 0.001953125), (5, 5, 1.0), (1, 6, 0.125)])
def test_mcnemar_exact_matches_the_binomial_tail(b, c, p):
    assert mcnemar_exact(b, c) == pytest.approx(p)


def test_per_section_deltas_and_many_way_comparison_against_the_first():
    (r,) = compare_many([("base", items("wwww")), ("trained", items("cwcw"))])
    assert (r["a"], r["b"]) == ("base", "trained")
    assert r["by_section"]["edge_case"]["delta"] == 1.0 and r["by_section"]["core"]["delta"] == 0.0
