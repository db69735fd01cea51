"""The scorecard of one evaluation: counts that add up, a mean with its uncertainty, and breakdowns.

Counting: ``n_items = n_scored + n_unscored``. ``unscored`` items are those a judge could not
score (an unreachable or unparseable LLM judge, with a ``reason``); they are left out of every
mean, never counted as zeros, and their reasons are tallied in ``unscored_reasons``.
``invalid`` items (no answer could be extracted) *are* scored: they count as not correct, and
``n_invalid`` (a part of ``n_scored``) reports them apart from plain wrong answers.

``mean`` is correct / scored; ``stddev`` is the population standard deviation of the per-item
0/1 scores (``sqrt(p(1-p))``); ``ci95`` is the Wilson score interval ``[low, high]``, which stays
inside [0, 1] and is not degenerate at 0/n or n/n as the normal approximation is.

``primary_score`` is that mean (``answer_correctness@v1`` unless the caller names another
metric) and ``primary_metric`` names it. Fallback: when no item was scored there is no
score to rank by, so ``primary_score`` is ``None`` (never 0, which would rank a judge outage
as a bad model) and ``primary_metric`` says why. Breakdowns with nothing scored have
``mean: None`` likewise.

Deterministic: the same input gives an identical dict, keys sorted at every level and floats
rounded to 6 places, so two scorecards can be compared with ``==`` or stored as canonical JSON.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

Z95 = 1.959963984540054  # two-sided 95% standard normal quantile
OUTCOMES = ("correct", "wrong", "invalid", "unscored")
BREAKDOWNS = ("section", "category", "difficulty")
DEFAULT_METRIC = "answer_correctness@v1"


def wilson_interval(successes: int, n: int, *, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for ``successes`` out of ``n``; ``(0.0, 1.0)`` when ``n`` is 0 (no information)."""
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be within 0..n, got {successes} of {n}")
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (round(low, 6), round(high, 6))


def _outcome(item: object) -> tuple[str, str | None]:
    """(outcome, reason) of an item score: an outcome string, a mapping or an object with ``outcome``."""
    if isinstance(item, str):
        outcome, reason = item, None
    elif isinstance(item, Mapping):
        outcome, reason = item["outcome"], item.get("reason")
    else:
        outcome, reason = item.outcome, getattr(item, "reason", None)
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    return outcome, reason


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


def _group(counts: Counter) -> dict:
    n_scored = counts["correct"] + counts["wrong"] + counts["invalid"]
    return {
        "correct": counts["correct"],
        "mean": _round(counts["correct"] / n_scored) if n_scored else None,
        "n": n_scored + counts["unscored"],
        "n_invalid": counts["invalid"],
        "n_scored": n_scored,
    }


def scorecard(item_scores: Iterable[object], items_meta: Sequence[Mapping], *, metric: str = DEFAULT_METRIC) -> dict:
    """The scorecard of ``item_scores[i]`` (an outcome string, an ``ItemScore``, or a mapping with
    ``outcome`` and, for ``unscored``, ``reason``) for the item described by ``items_meta[i]``
    (``section``, ``category``, ``difficulty``; a missing field is ``unknown``)."""
    outcomes = [_outcome(item) for item in item_scores]
    if len(outcomes) != len(items_meta):
        raise ValueError(f"{len(outcomes)} item scores for {len(items_meta)} items")
    total = Counter(outcome for outcome, _ in outcomes)
    reasons = Counter(str(reason) if reason else "unspecified" for outcome, reason in outcomes if outcome == "unscored")
    # One count per (group name, outcome) pair, split into a Counter per group afterwards: a Counter
    # made per item and breakdown cost more than the rest of the scorecard.
    pairs: dict[str, Counter] = {key: Counter() for key in BREAKDOWNS}
    for (outcome, _), meta in zip(outcomes, items_meta):
        for key in BREAKDOWNS:
            pairs[key][str(meta.get(key) or "unknown"), outcome] += 1
    groups: dict[str, dict[str, Counter]] = {key: {} for key in BREAKDOWNS}
    for key, counts in pairs.items():
        for (name, outcome), n in counts.items():
            groups[key].setdefault(name, Counter())[outcome] = n
    n_scored = total["correct"] + total["wrong"] + total["invalid"]
    mean = total["correct"] / n_scored if n_scored else None
    card = {
        "ci95": list(wilson_interval(total["correct"], n_scored)) if n_scored else None,
        "mean": _round(mean),
        "metric": metric,
        "n_correct": total["correct"],
        "n_invalid": total["invalid"],
        "n_items": len(outcomes),
        "n_scored": n_scored,
        "n_unscored": total["unscored"],
        "n_wrong": total["wrong"],
        "primary_metric": metric if n_scored else f"none: no item could be scored by {metric}",
        "primary_score": _round(mean),
        "stddev": _round(math.sqrt(mean * (1 - mean))) if mean is not None else None,
        "unscored_reasons": dict(sorted(reasons.items())),
    }
    for key in BREAKDOWNS:
        card[f"by_{key}"] = {name: _group(counts) for name, counts in sorted(groups[key].items())}
    return dict(sorted(card.items()))
