"""Valid traces at the edges of what the pipeline must handle.

Each kind stresses one thing downstream code gets wrong: a single step, negative and
zero answers, thousands separators in the prompt, decimal and fraction answers, text
answers, non-ASCII names, and long prompts. All answers are exact.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from fractions import Fraction

from tunix_rt_pipelines.traces.schema import ReasoningTrace

Edge = tuple[str, list[str], str]


def _single_step(r: random.Random) -> Edge:
    a, b = r.randint(10, 99), r.randint(10, 99)
    return f"What is {a} + {b}?", [f"{a} + {b} = {a + b}."], str(a + b)


def _negative(r: random.Random) -> Edge:
    t, drop = r.randint(-5, 8), r.randint(10, 25)
    end = t - drop
    return (
        f"The temperature is {t} °C at noon and falls by {drop} degrees by midnight. What is the temperature at midnight, in °C?",
        [f"Falling by {drop} from {t} gives {t} − {drop} = {end}.", f"The midnight temperature is {end} °C."],
        str(end),
    )


def _zero(r: random.Random) -> Edge:
    n = r.randint(3, 30)
    return (
        f"A box has {n} marbles. {n} marbles are taken out, one at a time. How many marbles are left?",
        [f"{n} marbles were in the box and {n} were removed.", f"{n} − {n} = 0."],
        "0",
    )


def _thousands(r: random.Random) -> Edge:
    a, b = r.randint(1_000_000, 9_000_000), r.randint(100_000, 900_000)
    return (
        f"A city had {a:,} residents and gained {b:,} more. How many residents does it have now?",
        [f"Add the newcomers: {a:,} + {b:,}.", f"{a} + {b} = {a + b}, written {a + b:,}."],
        str(a + b),
    )


def _decimal(r: random.Random) -> Edge:
    total, people = r.randint(5, 60) * 2 + 1, 2
    share = total / people
    return (
        f"{total} litres of juice are shared equally between {people} jugs. How many litres go in each jug?",
        [f"Divide {total} by {people}.", f"{total} ÷ {people} = {share}."],
        f"{share}",
    )


def _fraction(r: random.Random) -> Edge:
    a, b = r.randint(1, 4), r.choice([3, 5, 7, 9])
    c = r.randint(1, 4)
    f = Fraction(a, b) + Fraction(c, b)
    return (
        f"What is {a}/{b} + {c}/{b}, as a fraction in lowest terms?",
        [f"Same denominator: ({a} + {c})/{b} = {a + c}/{b}.", f"In lowest terms that is {f.numerator}/{f.denominator}."],
        f"{f.numerator}/{f.denominator}" if f.denominator != 1 else str(f.numerator),
    )


def _text_answer(r: random.Random) -> Edge:
    a, b = r.sample(range(10, 99), 2)
    bigger = "yes" if a > b else "no"
    return (
        f"Is {a} greater than {b}? Answer yes or no.",
        [f"Compare the tens digits and units: {a} {'>' if a > b else '<'} {b}.", f"So the answer is {bigger}."],
        bigger,
    )


def _unicode_names(r: random.Random) -> Edge:
    who = r.choice(["Zoë", "José", "Łukasz", "Søren", "Ağa", "Chloé"])
    a, b = r.randint(2, 9), r.randint(2, 9)
    return (
        f"{who} plants {a} rows of {b} tulips. How many tulips does {who} plant?",
        [f"{a} rows × {b} tulips = {a * b}."],
        str(a * b),
    )


def _long_prompt(r: random.Random) -> Edge:
    values = [r.randint(1, 9) for _ in range(12)]
    story = " ".join(f"On day {i + 1} the bakery sells {v} cakes." for i, v in enumerate(values))
    partial = []
    running = 0
    for i, v in enumerate(values):
        running += v
        if i % 4 == 3:
            partial.append(f"After day {i + 1} the running total is {running}.")
    return f"{story} How many cakes does it sell over the {len(values)} days?", partial, str(running)


KINDS: dict[str, Callable[[random.Random], Edge]] = {
    "single_step": _single_step,
    "negative": _negative,
    "zero": _zero,
    "thousands": _thousands,
    "decimal": _decimal,
    "fraction": _fraction,
    "text_answer": _text_answer,
    "unicode": _unicode_names,
    "long_prompt": _long_prompt,
}


def generate_edge_cases(n: int, seed: int, *, id_prefix: str = "gen:edge", source: str = "synthetic.edge_case") -> list[ReasoningTrace]:
    r = random.Random(f"edge:{seed}")
    kinds = sorted(KINDS)
    out: list[ReasoningTrace] = []
    seen: set[str] = set()
    attempt = 0
    while len(out) < n:
        i = len(out)
        attempt += 1
        if attempt > 100 * n:
            raise RuntimeError(f"could not draw {n} distinct traces; the number ranges are too small")
        kind = kinds[i % len(kinds)]
        prompt, steps, answer = KINDS[kind](r)
        trace = (
            ReasoningTrace.model_validate(
                {
                    "id": f"{id_prefix}:{seed}:{i}",
                    "prompt": prompt,
                    "steps": steps,
                    "final_answer": answer,
                    "metadata": {
                        "source": source,
                        "category": "edge_case",
                        "difficulty": "medium",
                        "tags": [kind],
                    },
                }
            )
        )
        if trace.content_hash in seen:  # small number ranges repeat; keep traces distinct
            continue
        seen.add(trace.content_hash)
        out.append(trace)
    return out
