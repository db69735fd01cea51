"""map_slices: forked workers for large batches, the same results in the same order as in-process."""

import os

import pytest

from tunix_rt_pipelines.evaluation.answers import score_items
from tunix_rt_pipelines.evaluation.evaluate import score_records
from tunix_rt_pipelines.evaluation.parallel import MIN_ITEMS_PER_WORKER, map_slices

LARGE = 2 * MIN_ITEMS_PER_WORKER  # enough for two workers


def _with_pid(items):
    return [(item, os.getpid()) for item in items]


def test_a_large_batch_is_split_between_this_process_and_a_worker_in_order():
    results = map_slices(_with_pid, range(LARGE), workers=2)
    assert [item for item, _ in results] == list(range(LARGE))
    assert [pid == os.getpid() for _, pid in results] == [True] * (LARGE // 2) + [False] * (LARGE // 2)


def test_a_small_batch_stays_in_this_process():
    assert {pid for _, pid in map_slices(_with_pid, range(LARGE - 1), workers=2)} == {os.getpid()}


def test_an_error_in_a_worker_is_raised_here():
    def fail_on_last(items):
        return [1 / (LARGE - 1 - i) for i in items]

    with pytest.raises(ZeroDivisionError):
        map_slices(fail_on_last, range(LARGE), workers=2)


def test_scores_do_not_depend_on_the_number_of_workers():
    records = [{"item_id": f"i{k}", "expected_answer": str(k % 97),
                "output": f"{k} - {k} = 0\n" * (k % 3) + ("#### " if k % 2 else "Answer: ") + str(k % 89),
                "section": ("core", "edge_case")[k % 2]} for k in range(LARGE)]
    assert score_items(records, workers=2) == score_items(records)
    assert score_records(records, workers=2) == score_records(records)
