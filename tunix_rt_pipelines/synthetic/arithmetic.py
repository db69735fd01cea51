"""Multi-step arithmetic word problems with worked steps and exact integer answers.

Each family draws its numbers from a seeded ``random.Random`` and computes the answer
the way the steps state it, so the trace is correct by construction. Difficulty follows
the number of steps (2 easy, 3 medium, 4+ hard).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from tunix_rt_pipelines.traces.schema import ReasoningTrace

NAMES = ["Maya", "Liam", "Ava", "Noah", "Zoe", "Omar", "Ines", "Kenji", "Priya", "Lucas", "Sofia", "Ethan"]
ITEMS = [("notebook", "notebooks"), ("pen", "pens"), ("apple", "apples"), ("ticket", "tickets"), ("book", "books")]

Problem = tuple[str, list[str], int]  # prompt, steps, answer


def _shopping(r: random.Random) -> Problem:
    name = r.choice(NAMES)
    (_, a_pl), (_, b_pl) = r.sample(ITEMS, 2)
    a, b = r.randint(2, 9), r.randint(2, 9)
    p, q = r.randint(2, 15), r.randint(1, 12)
    x, y = a * p, b * q
    total = x + y
    bill = ((total // 10) + r.randint(1, 5)) * 10
    prompt = (
        f"{name} buys {a} {a_pl} at ${p} each and {b} {b_pl} at ${q} each, "
        f"and pays with ${bill}. How many dollars of change does {name} get?"
    )
    steps = [
        f"The {a_pl} cost {a} × {p} = {x} dollars.",
        f"The {b_pl} cost {b} × {q} = {y} dollars.",
        f"Together they cost {x} + {y} = {total} dollars.",
        f"The change is {bill} − {total} = {bill - total} dollars.",
    ]
    return prompt, steps, bill - total


def _inventory(r: random.Random) -> Problem:
    start = r.randint(40, 300)
    shipped = r.randint(5, start - 5)
    received = r.randint(10, 120)
    left = start - shipped + received
    if left % 2:
        received += 1
        left += 1
    half = left // 2
    prompt = (
        f"A warehouse holds {start} boxes. On Monday it ships {shipped} boxes, on Tuesday it receives "
        f"{received} boxes, and on Wednesday it ships half of what it has. How many boxes are left?"
    )
    steps = [
        f"After Monday: {start} − {shipped} = {start - shipped} boxes.",
        f"After Tuesday: {start - shipped} + {received} = {left} boxes.",
        f"Half of {left} is {left} ÷ 2 = {half}, so {half} boxes are shipped on Wednesday.",
        f"Left: {left} − {half} = {half} boxes.",
    ]
    return prompt, steps, half


def _travel(r: random.Random) -> Problem:
    v, t1 = r.randint(30, 120), r.randint(1, 5)
    w, t2 = r.randint(20, 100), r.randint(1, 4)
    d1, d2 = v * t1, w * t2
    prompt = (
        f"A train travels at {v} km/h for {t1} hours and then at {w} km/h for {t2} hours. "
        f"How many kilometres does it travel in total?"
    )
    steps = [
        f"First part: {v} × {t1} = {d1} km.",
        f"Second part: {w} × {t2} = {d2} km.",
        f"Total: {d1} + {d2} = {d1 + d2} km.",
    ]
    return prompt, steps, d1 + d2


def _expression(r: random.Random) -> Problem:
    a, b, c, d = r.randint(2, 50), r.randint(2, 50), r.randint(2, 12), r.randint(1, 200)
    s = a + b
    m = s * c
    prompt = f"Compute ({a} + {b}) × {c} − {d}."
    steps = [
        f"Inside the brackets: {a} + {b} = {s}.",
        f"Multiply: {s} × {c} = {m}.",
        f"Subtract: {m} − {d} = {m - d}.",
    ]
    return prompt, steps, m - d


def _discount(r: random.Random) -> Problem:
    pct = r.choice([10, 20, 25, 50])
    price = r.randint(2, 40) * 20
    off = price * pct // 100
    qty = r.randint(2, 6)
    unit = price - off
    prompt = (
        f"A jacket costs ${price}. During a sale every jacket is {pct}% off. "
        f"How many dollars do {qty} jackets cost in the sale?"
    )
    steps = [
        f"The discount is {pct}% of {price} = {price} × {pct} ÷ 100 = {off} dollars.",
        f"One jacket costs {price} − {off} = {unit} dollars.",
        f"{qty} jackets cost {qty} × {unit} = {qty * unit} dollars.",
    ]
    return prompt, steps, qty * unit


def _sharing(r: random.Random) -> Problem:
    friends = r.randint(2, 8)
    per = r.randint(3, 20)
    packs = r.randint(2, 6)
    have = friends * per
    pack_size = r.randint(2, 10)
    total = have + packs * pack_size
    while total % friends:
        total += 1
        have += 1
    each = total // friends
    prompt = (
        f"{friends} friends have {have} stickers and buy {packs} packs of {pack_size} stickers. "
        f"They share all the stickers equally. How many stickers does each friend get?"
    )
    steps = [
        f"The packs hold {packs} × {pack_size} = {packs * pack_size} stickers.",
        f"In all there are {have} + {packs * pack_size} = {total} stickers.",
        f"Each friend gets {total} ÷ {friends} = {each} stickers.",
    ]
    return prompt, steps, each


FAMILIES: dict[str, Callable[[random.Random], Problem]] = {
    "shopping": _shopping,
    "inventory": _inventory,
    "travel": _travel,
    "expression": _expression,
    "discount": _discount,
    "sharing": _sharing,
}


def difficulty_for(n_steps: int) -> str:
    return "easy" if n_steps <= 2 else "medium" if n_steps == 3 else "hard"


def generate_arithmetic(n: int, seed: int, *, id_prefix: str = "gen:arith", source: str = "synthetic.arithmetic") -> list[ReasoningTrace]:
    """``n`` word problems, families taken in turn, numbers from ``seed``."""
    r = random.Random(f"arithmetic:{seed}")
    names = sorted(FAMILIES)
    out: list[ReasoningTrace] = []
    seen: set[str] = set()
    attempt = 0
    while len(out) < n:
        i = len(out)
        attempt += 1
        if attempt > 100 * n:
            raise RuntimeError(f"could not draw {n} distinct traces; the number ranges are too small")
        family = names[i % len(names)]
        prompt, steps, answer = FAMILIES[family](r)
        trace = (
            ReasoningTrace.model_validate(
                {
                    "id": f"{id_prefix}:{seed}:{i}",
                    "prompt": prompt,
                    "steps": steps,
                    "final_answer": str(answer),
                    "metadata": {
                        "source": source,
                        "category": "arithmetic",
                        "difficulty": difficulty_for(len(steps)),
                        "tags": [family],
                    },
                }
            )
        )
        if trace.content_hash in seen:  # small number ranges repeat; keep traces distinct
            continue
        seen.add(trace.content_hash)
        out.append(trace)
    return out
