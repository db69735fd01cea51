"""Score a large batch on every core: this process and forked workers, one contiguous slice each.

Scoring is pure Python and CPU-bound, so threads would queue on the GIL; processes do not. The
workers are forked, so they inherit the items (copy-on-write) instead of receiving them pickled.
Each sends its slice's results back as a table of distinct values and one index per item:
scores repeat heavily (a million answer scores hold a few tens of thousands of distinct ones), so
that is a few MB for a million items instead of a million pickled tuples.

Single-process where forking cannot pay or cannot run: fewer than ``MIN_ITEMS_PER_WORKER`` items
per worker (a fork and a pool cost tens of milliseconds), or no ``fork`` start method (Windows).
Results are the same either way and in the same order.
"""

from __future__ import annotations

import multiprocessing
from array import array
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R", bound=Hashable)

MIN_ITEMS_PER_WORKER = 10_000

# Set in the parent just before the fork, read by the workers: inherited, never pickled.
_ITEMS: Sequence | None = None
_FN: Callable | None = None


def _map_slice(bounds: tuple[int, int]) -> tuple[list, array]:
    a, b = bounds
    table: dict = {}
    index = array("I")
    for value in _FN(_ITEMS[a:b]):
        i = table.get(value)
        if i is None:
            i = table[value] = len(table)
        index.append(i)
    return list(table), index


def map_slices(fn: Callable[[Sequence[T]], Iterable[R]], items: Sequence[T], *, workers: int) -> list[R]:
    """``list(fn(items))``, computed over slices of ``items`` in up to ``workers`` forked processes.

    ``fn`` maps a slice to one hashable result per item, in order (it may be a closure: it is
    inherited by the fork, not pickled). An exception in a worker is raised here."""
    global _ITEMS, _FN
    n = len(items)
    workers = min(workers, n // MIN_ITEMS_PER_WORKER)
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return list(fn(items))
    # This process scores the first slice itself, as a plain list (it has nothing to send),
    # while workers - 1 forked ones score the rest: one fork fewer.
    bounds = [(n * k // workers, n * (k + 1) // workers) for k in range(workers)]
    _ITEMS, _FN = items, fn
    try:
        with multiprocessing.get_context("fork").Pool(workers - 1) as pool:
            pending = pool.map_async(_map_slice, bounds[1:], chunksize=1)
            results: list[R] = list(fn(items[: bounds[1][0]]))
            parts = pending.get()
    finally:
        _ITEMS = _FN = None
    for table, index in parts:
        results += map(table.__getitem__, index)
    return results
