import pytest

from tunix_rt_pipelines.registry.gates import decide_gate
from tunix_rt_pipelines.registry.promotion import PromotionRefused, promote
from tunix_rt_pipelines.registry.versions import alias_history, get_version, register_version

from .conftest import store_evaluation


def register(engine, artifacts, checkpoint, tag, outcomes):
    eid = store_evaluation(engine, tag, outcomes)
    version, _ = register_version(engine, artifacts, name="smoke", checkpoint_digest=checkpoint(tag.encode()),
                                  evaluation_id=eid, metrics={}, config={}, provenance={}, actor="test")
    return version


def test_promote_refuses_without_a_passing_gate_record(engine, artifacts, checkpoint):
    version = register(engine, artifacts, checkpoint, "a", "10")
    with pytest.raises(PromotionRefused, match="no passing gate record"):
        promote(engine, version.label, actor="test")


def test_promote_moves_champion_and_records_the_gate(engine, artifacts, checkpoint):
    version = register(engine, artifacts, checkpoint, "a", "10")
    gate = decide_gate(engine, version.evaluation_id, "smoke")
    result = promote(engine, version.label, actor="test")
    assert result.changed and result.gate_id == gate.id
    assert get_version(engine, "smoke@champion") == version
    assert alias_history(engine, "smoke", "champion")[-1]["gate_id"] == gate.id


def test_promoting_the_holder_again_changes_nothing(engine, artifacts, checkpoint):
    version = register(engine, artifacts, checkpoint, "a", "10")
    decide_gate(engine, version.evaluation_id, "smoke")
    promote(engine, version.label, actor="test")
    again = promote(engine, version.label, actor="test")
    assert not again.changed and len(alias_history(engine, "smoke", "champion")) == 1


def test_a_gate_passed_against_an_earlier_champion_does_not_count(engine, artifacts, checkpoint):
    first = register(engine, artifacts, checkpoint, "a", "1100")
    second = register(engine, artifacts, checkpoint, "b", "1110")
    decide_gate(engine, first.evaluation_id, "smoke")
    decide_gate(engine, second.evaluation_id, "smoke")  # passed while nobody was champion
    promote(engine, first.label, actor="test")
    with pytest.raises(PromotionRefused, match="against champion"):
        promote(engine, second.label, actor="test")
    decide_gate(engine, second.evaluation_id, "smoke")  # against the new champion: better, passes
    assert promote(engine, second.label, actor="test").previous_version_id == first.id


def test_a_failed_gate_keeps_the_champion(engine, artifacts, checkpoint):
    good = register(engine, artifacts, checkpoint, "good", "1111111111")
    decide_gate(engine, good.evaluation_id, "smoke")
    promote(engine, good.label, actor="test")
    bad = register(engine, artifacts, checkpoint, "bad", "0000000000")
    assert not decide_gate(engine, bad.evaluation_id, "smoke").passed
    with pytest.raises(PromotionRefused):
        promote(engine, bad.label, actor="test")
    assert get_version(engine, "smoke@champion") == good
