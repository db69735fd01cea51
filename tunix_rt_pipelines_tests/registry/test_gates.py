import pytest

from tunix_rt_pipelines.registry.baselines import set_baseline
from tunix_rt_pipelines.registry.gates import GatePolicy, decide_gate
from tunix_rt_pipelines.registry.promotion import promote
from tunix_rt_pipelines.registry.versions import register_version

from .conftest import store_evaluation


def champion_from(engine, artifacts, checkpoint, evaluation):
    version, _ = register_version(engine, artifacts, name="smoke", checkpoint_digest=checkpoint(evaluation.encode()),
                                  evaluation_id=evaluation, metrics={}, config={}, provenance={}, actor="test")
    assert decide_gate(engine, evaluation, "smoke").passed
    promote(engine, version.label, actor="test")
    return version


def test_with_no_champion_and_no_baseline_the_gate_passes(engine):
    decision = decide_gate(engine, store_evaluation(engine, "a", "1100"), "smoke")
    assert decision.passed and [c.name for c in decision.checks] == ["champion"]


def test_an_evaluation_with_nothing_scored_fails_the_gate(engine):
    eid = store_evaluation(engine, "empty", "")
    assert not decide_gate(engine, eid, "smoke").passed


def test_a_drop_beyond_the_baseline_threshold_fails(engine):
    set_baseline(engine, "core", store_evaluation(engine, "ref", "1111111111"), max_drop=0.1, max_right_to_wrong=9)
    assert decide_gate(engine, store_evaluation(engine, "ok", "1111111110"), "smoke").passed  # drop 0.1: allowed
    failed = decide_gate(engine, store_evaluation(engine, "bad", "1111111100"), "smoke")
    (check,) = failed.checks_named("baseline:")
    assert not failed.passed and check.drop == pytest.approx(0.2) and "worse" in check.reason


def test_too_many_right_to_wrong_flips_fail_even_when_the_mean_holds(engine):
    set_baseline(engine, "flips", store_evaluation(engine, "ref", "1111100000"), max_drop=0.5, max_right_to_wrong=2)
    decision = decide_gate(engine, store_evaluation(engine, "swap", "0000011111"), "smoke")
    (check,) = decision.checks_named("baseline:")
    assert check.drop == 0 and check.right_to_wrong == 5 and not check.passed


def test_lower_is_better_baselines_fail_on_a_rise(engine):
    set_baseline(engine, "errors", store_evaluation(engine, "ref", "0000000001"), lower_is_better=True,
                 max_drop=0.0, max_right_to_wrong=10)
    assert not decide_gate(engine, store_evaluation(engine, "more", "0000000011"), "smoke").passed


def test_baselines_only_apply_to_their_eval_set(engine):
    set_baseline(engine, "other", store_evaluation(engine, "ref", "1111", evalset="f" * 64), max_drop=0.0)
    assert decide_gate(engine, store_evaluation(engine, "mine", "0000"), "smoke").passed


def test_the_champion_check_fails_on_a_regression_against_the_holder(engine, artifacts, checkpoint):
    champion_from(engine, artifacts, checkpoint, store_evaluation(engine, "champ", "1111111111"))
    worse = decide_gate(engine, store_evaluation(engine, "worse", "1111111000"), "smoke", GatePolicy(0.05, 5))
    assert not worse.passed and worse.checks_named("champion")[0].right_to_wrong == 3


def test_a_champion_from_another_eval_set_is_not_compared(engine, artifacts, checkpoint):
    champion_from(engine, artifacts, checkpoint, store_evaluation(engine, "champ", "11", evalset="f" * 64))
    decision = decide_gate(engine, store_evaluation(engine, "new", "11"), "smoke")
    assert not decision.passed and "evaluate the champion on it first" in decision.checks[0].reason


def test_a_champion_re_evaluated_on_the_new_eval_set_is_compared_there(engine, artifacts, checkpoint):
    champion = champion_from(engine, artifacts, checkpoint, store_evaluation(engine, "champ", "11", evalset="f" * 64))
    store_evaluation(engine, "champ-again", "1100", model_digest=champion.checkpoint_digest)  # on EVALSET
    decision = decide_gate(engine, store_evaluation(engine, "new", "1110"), "smoke")
    (check,) = decision.checks
    assert decision.passed and check.reference == 0.5 and check.wrong_to_right == 1


def test_deciding_the_same_question_twice_returns_the_stored_decision(engine):
    eid = store_evaluation(engine, "a", "10")
    assert decide_gate(engine, eid, "smoke") == decide_gate(engine, eid, "smoke")
