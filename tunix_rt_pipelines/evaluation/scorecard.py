"""The scorecard of one evaluation: counts that add up, a mean with its uncertainty, and breakdowns.

Counting: ``n_items = n_scored + n_unscored``. ``unscored`` items are those a judge could not
score (an unreachable or unparseable LLM judge); they are never zeros. ``invalid`` items (no
answer could be extracted) are scored, and count as not correct, but are reported apart.

``primary_score`` is the share of scored items that are correct (answer_correctness). When
nothing could be scored it is ``None`` and ``primary_metric`` says so: there is no fallback
metric that would silently rank such a run.
"""

from __future__ import annotations

import math
from collections import defaultdict

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion: sensible at 0/n and n/n, unlike the normal one."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (round(max(0.0, centre - half), 6), round(min(1.0, centre + half), 6))


def _summary(outcomes: list[str]) -> dict:
    scored = [o for o in outcomes if o != "unscored"]
    correct = sum(o == "correct" for o in scored)
    n = len(scored)
    mean = correct / n if n else None
    return {
        "n": len(outcomes),
        "n_scored": n,
        "correct": correct,
        "mean": round(mean, 6) if mean is not None else None,
    }


def scorecard(outcomes: list[str], meta: list[dict], *, metric: str = "answer_correctness@v1") -> dict:
    """``outcomes[i]`` (correct | wrong | invalid | unscored) of the item described by ``meta[i]``
    (its ``section``, ``category`` and ``difficulty``)."""
    if len(outcomes) != len(meta):
        raise ValueError(f"{len(outcomes)} outcomes for {len(meta)} items")
    overall = _summary(outcomes)
    n, correct = overall["n_scored"], overall["correct"]
    mean = overall["mean"]
    stddev = math.sqrt(mean * (1 - mean)) if mean is not None else None
    groups: dict[str, dict[str, list[str]]] = {"section": defaultdict(list), "category": defaultdict(list),
                                               "difficulty": defaultdict(list)}
    for outcome, m in zip(outcomes, meta):
        for key, by in groups.items():
            by[str(m.get(key, "unknown"))].append(outcome)
    return {
        "metric": metric,
        "n_items": len(outcomes),
        "n_scored": n,
        "n_unscored": len(outcomes) - n,
        "n_invalid": sum(o == "invalid" for o in outcomes),
        "n_correct": correct,
        "mean": mean,
        "stddev": round(stddev, 6) if stddev is not None else None,
        "ci95": list(wilson_interval(correct, n)) if n else None,
        "primary_score": mean,
        "primary_metric": metric if n else f"{metric}: no item could be scored",
        **{f"by_{key}": {name: _summary(items) for name, items in sorted(by.items())} for key, by in groups.items()},
    }
