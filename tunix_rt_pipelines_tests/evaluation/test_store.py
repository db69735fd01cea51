"""Evaluations are stored once per (predictions, judge) and ranked by primary score."""

from datetime import UTC, datetime, timedelta

import pytest

from tunix_rt_pipelines.evaluation.store import evaluation_id, item_outcomes, leaderboard, save_evaluation

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def record(n: int, score: float | None, config: str = "cfg", when: datetime = T0) -> dict:
    return {"id": evaluation_id(f"{n:064d}", "answer_correctness@v1"), "label": f"run{n}",
            "judge": "answer_correctness@v1", "predictions_sha256": f"{n:064d}", "evalset_sha256": "e" * 64,
            "model_digest": f"{n:x}".rjust(64, "m"), "config_name": config, "config_hash": "c" * 64,
            "dataset_digest": "d" * 64, "backend": "torch", "primary_score": score, "n_items": 2,
            "n_scored": 2, "n_invalid": 0, "scorecard": {"primary_score": score}, "run_id": None, "created_at": when}


ITEMS = [{"item_id": "a", "outcome": "correct", "extracted": "1", "extractor": "marker_hash", "strict_match": True,
          "flexible_match": True, "section": "core", "category": "arithmetic"}]


@pytest.fixture
def engine(store):
    return store.engine


def test_saving_the_same_evaluation_twice_stores_it_once(engine):
    assert save_evaluation(engine, record(1, 0.5), ITEMS) is True
    assert save_evaluation(engine, record(1, 0.5), ITEMS) is False
    assert len(leaderboard(engine)) == 1 and list(item_outcomes(engine, record(1, 0.5)["id"][:10])) == ["a"]


def test_leaderboard_ranks_by_score_with_unscorable_last(engine):
    for n, score in ((1, 0.2), (2, None), (3, 0.9)):
        save_evaluation(engine, record(n, score), [])
    assert [r["label"] for r in leaderboard(engine)] == ["run3", "run1", "run2"]


def test_leaderboard_filters_by_config_model_and_date(engine):
    save_evaluation(engine, record(1, 0.2, "a", T0), [])
    save_evaluation(engine, record(2, 0.3, "b", T0 + timedelta(days=2)), [])
    assert [r["label"] for r in leaderboard(engine, config_name="a")] == ["run1"]
    assert [r["label"] for r in leaderboard(engine, since=T0 + timedelta(days=1))] == ["run2"]
    assert [r["label"] for r in leaderboard(engine, model_digest="m" * 63 + "1")] == ["run1"]


def test_an_evaluation_is_found_by_label_or_id_prefix(engine):
    save_evaluation(engine, record(1, 0.5), ITEMS)
    assert item_outcomes(engine, "run1") == item_outcomes(engine, record(1, 0.5)["id"][:8])
    with pytest.raises(LookupError, match="no evaluation"):
        item_outcomes(engine, "nope")
