"""Per-item comparison of evaluations on the same eval set: flips, per-section deltas, an exact McNemar test.

Two averages hide which items changed. Here items are joined by id; for each pair (A, B) an
item flips right→wrong or wrong→right (``invalid`` and ``wrong`` both count as not right;
``unscored`` items are left out of the pair). McNemar's exact test asks whether the flips in
one direction outnumber the other more than chance would: under the null each discordant item
is a fair coin, so the two-sided p-value is a binomial tail.
"""

from __future__ import annotations

from math import comb


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b right→wrong and c wrong→right discordant items."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def compare_pair(a: dict[str, dict], b: dict[str, dict]) -> dict:
    """``a``/``b``: item_id -> item score row (``outcome``, ``section``). B is compared against A."""
    common = sorted(set(a) & set(b))
    pairs = [(i, a[i], b[i]) for i in common if a[i]["outcome"] != "unscored" and b[i]["outcome"] != "unscored"]
    right_to_wrong = [i for i, x, y in pairs if x["outcome"] == "correct" and y["outcome"] != "correct"]
    wrong_to_right = [i for i, x, y in pairs if x["outcome"] != "correct" and y["outcome"] == "correct"]
    sections: dict[str, dict] = {}
    for i, x, y in pairs:
        s = sections.setdefault(x["section"], {"n": 0, "a_correct": 0, "b_correct": 0})
        s["n"] += 1
        s["a_correct"] += x["outcome"] == "correct"
        s["b_correct"] += y["outcome"] == "correct"
    for s in sections.values():
        s["delta"] = round((s["b_correct"] - s["a_correct"]) / s["n"], 6)
    n = len(pairs)
    a_acc = sum(x["outcome"] == "correct" for _, x, _ in pairs) / n if n else None
    b_acc = sum(y["outcome"] == "correct" for _, _, y in pairs) / n if n else None
    return {
        "n_paired": n,
        "only_in_a": len(set(a) - set(b)),
        "only_in_b": len(set(b) - set(a)),
        "a_accuracy": a_acc,
        "b_accuracy": b_acc,
        "delta": (b_acc - a_acc) if n else None,
        "right_to_wrong": right_to_wrong,
        "wrong_to_right": wrong_to_right,
        "mcnemar_p": mcnemar_exact(len(right_to_wrong), len(wrong_to_right)),
        "by_section": dict(sorted(sections.items())),
    }


def compare_many(evaluations: list[tuple[str, dict[str, dict]]]) -> list[dict]:
    """Each evaluation after the first against the first (the baseline): ``[{"a", "b", ...}]``."""
    if len(evaluations) < 2:
        raise ValueError("compare needs at least two evaluations")
    (base_label, base), rest = evaluations[0], evaluations[1:]
    return [{"a": base_label, "b": label, **compare_pair(base, items)} for label, items in rest]
