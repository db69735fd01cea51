"""Deterministic (seeded) prediction strings shaped like real model output, for the scoring benchmark.

Only the standard library and ``tunix_rt_pipelines.synthetic.arithmetic`` (for a pool of real
step-by-step traces); the lm-eval peer reads the written file, never this module.

Shapes (share of items, what the scorer must do with them):

==================  =====  =========================================================================
hash_int             60%   steps, then ``#### N`` (N an integer; right 65% of the time): our fast path
hash_recited          3%   an earlier ``#### X`` recited in the reasoning, the final ``#### N`` last
answer_colon          7%   ``Answer: N`` / ``**Final answer:** N.`` / ``The answer is: N`` / ``ANSWER：N``
boxed                 6%   ``\\boxed{N}``, ``\\boxed{\\frac{a}{b}}``, ``\\boxed{12.5}``
think                 6%   ``<think>…</think>`` then an answer; 1 in 5 unclosed (truncated: invalid)
formatted             6%   ``$1,234.50``, ``1,234``, ``0.5`` vs ``1/2``, ``3/4`` vs ``0.75``, ``25%``,
                           ``−3`` (U+2212), ``7.00`` vs ``7``, ``€12``
last_number           5%   no marker: the last number of the last sentence
no_answer             4%   no number at all, or an empty/whitespace output: invalid
rambling              3%   2–8 KB: the reasoning repeated with second thoughts, then an answer
==================  =====  =========================================================================

Operators: half the pool keeps the generator's Unicode ``× − ÷``, half is ASCII (``* - /``).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SHAPES = (
    ("hash_int", 60), ("hash_recited", 3), ("answer_colon", 7), ("boxed", 6), ("think", 6),
    ("formatted", 6), ("last_number", 5), ("no_answer", 4), ("rambling", 3),
)
_ASCII_OPS = str.maketrans({"×": "*", "−": "-", "÷": "/"})
_OPENERS = ("", "", "", "Let's think step by step.\n", "Let me work through this.\n", "Step by step:\n")
_NO_ANSWER = (
    "I'm not sure how to solve this problem.",
    "Let me think about the question carefully. The question asks how many are left after the sale.",
    "We need more information to answer this question.",
    "",
    "   \n",
    "The problem can be solved by setting up an equation and solving it for the unknown quantity.",
)
_SECOND_THOUGHTS = (
    "Wait, let me double-check that step.", "Hmm, actually, let me recompute this more carefully.",
    "Let me verify the previous calculation again.", "On second thought, I should re-read the question.",
)


def _pool(n: int, seed: int) -> list[tuple[list[str], int]]:
    from tunix_rt_pipelines.synthetic.arithmetic import FAMILIES

    r = random.Random(seed)
    names = sorted(FAMILIES)
    pool = []
    for i in range(n):
        _, steps, answer = FAMILIES[names[i % len(names)]](r)
        if i % 2:
            steps = [s.translate(_ASCII_OPS) for s in steps]
        pool.append((steps, int(answer)))
    return pool


def _wrong(r: random.Random, answer: int) -> int:
    w = answer + r.choice((-10, -2, -1, 1, 2, 5, 10, 100)) if r.random() < 0.7 else r.randint(0, 2 * abs(answer) + 10)
    return w if w != answer else answer + 1


def _formatted(r: random.Random, body: str, answer: int, right: bool) -> tuple[str, str]:
    """(output, expected) with a non-plain number on one side or both."""
    a = answer if right else _wrong(r, answer)
    k = r.randrange(8)
    if k == 0:  # currency, thousands separator, cents
        big = a * 37 + 1000
        exp = answer * 37 + 1000
        return f"{body}\n#### ${big:,}.00", str(exp)
    if k == 1:
        big = a * 113 + 1000
        return f"{body}\n#### {big:,}", f"{answer * 113 + 1000:,}" if r.random() < 0.5 else str(answer * 113 + 1000)
    if k == 2:  # decimal vs fraction
        num, den = r.choice(((1, 2), (1, 4), (3, 4), (3, 8), (5, 2), (7, 4)))
        got = (num / den) if right else (num / den + r.choice((0.5, 1, 2)))
        return f"{body}\nSo each one gets {got} of it.\n#### {got}", f"{num}/{den}"
    if k == 3:  # fraction vs decimal
        num, den = r.choice(((3, 4), (1, 8), (5, 4), (9, 2)))
        got = f"{num}/{den}" if right else f"{num + 1}/{den}"
        return f"{body}\n#### {got}", str(num / den)
    if k == 4:
        return f"{body}\nThat is {a}% of the total.\n#### {a}%", str(answer)
    if k == 5:  # Unicode minus
        return f"{body}\nThe temperature falls below zero.\n#### \u2212{a}", f"-{answer}"
    if k == 6:
        return f"{body}\n#### {a}.00", str(answer)
    return f"{body}\nThe total is €{a}.\n#### €{a}", str(answer)


def make_predictions(n: int, seed: int = 11, pool_size: int = 50_000) -> tuple[list[str], list[str], list[str]]:
    """(outputs, expected answers, shape names), ``n`` of each, identical for the same arguments."""
    r = random.Random(seed)
    pool = _pool(min(pool_size, n), seed)
    names = [s for s, _ in SHAPES]
    weights = [w for _, w in SHAPES]
    shapes = r.choices(names, weights, k=n)
    picks = [r.randrange(len(pool)) for _ in range(n)]
    outputs, expected = [], []
    rnd, choice = r.random, r.choice
    for i in range(n):
        shape = shapes[i]
        steps, answer = pool[picks[i]]
        body = choice(_OPENERS) + "\n".join(steps)
        right = rnd() < 0.65
        a = answer if right else _wrong(r, answer)
        exp = str(answer)
        if shape == "hash_int":
            out = f"{body}\n#### {a}"
        elif shape == "hash_recited":
            out = f"Recall the format: end with #### {r.randint(1, 99)} style.\n{body}\n#### {a}"
        elif shape == "answer_colon":
            out = body + "\n" + choice((f"Answer: {a}", f"**Final answer:** {a}.", f"The answer is: {a}",
                                        f"ANSWER：{a}", f"answer: {a}. Check: {a} - {answer} = {a - answer}"))
        elif shape == "boxed":
            k = r.randrange(3)
            if k == 0:
                out = f"{body}\nSo the answer is $\\boxed{{{a}}}$."
            elif k == 1:
                num, den = r.choice(((1, 2), (3, 4), (2, 3), (7, 8)))
                out = f"{body}\nThe fraction is $\\boxed{{\\frac{{{num if right else num + 1}}}{{{den}}}}}$"
                exp = f"{num}/{den}"
            else:
                out = f"{body}\nFinal: \\boxed{{{a}.5}}"
                exp = f"{answer}.5"
        elif shape == "think":
            k = r.randrange(5)
            if k == 0:  # truncated: the model was still thinking
                out = f"<think>\n{body}\nSo far I have {a}, and next I need to"
            elif k == 1:
                out = f"<think>\n{body}\nMaybe it is {_wrong(r, answer)}? No.\n</think>\nThe answer is {a}."
            else:
                out = f"<think>\n{body}\n</think>\n\n#### {a}"
        elif shape == "formatted":
            out, exp = _formatted(r, body, answer, right)
        elif shape == "last_number":
            out = f"{body}\nSo the result is {a} in total."
        elif shape == "no_answer":
            out = choice(_NO_ANSWER)
        else:  # rambling
            reps = r.randint(4, 14)
            parts = [body]
            for _ in range(reps):
                parts.append(choice(_SECOND_THOUGHTS))
                parts.append("\n".join(steps))
            parts.append(choice((f"#### {a}", f"Therefore the answer is {a}.", f"Answer: {a}")))
            out = "\n".join(parts)
        outputs.append(out)
        expected.append(exp)
    return outputs, expected, shapes


def write_jsonl(path: Path, outputs: list[str], expected: list[str], shapes: list[str]) -> None:
    """One ``{"output", "expected", "shape"}`` per line (the lm-eval peer reads the first two)."""
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for o, e, s in zip(outputs, expected, shapes):
            f.write(json.dumps({"output": o, "expected": e, "shape": s}, ensure_ascii=False))
            f.write("\n")
    tmp.replace(path)


def read_jsonl(path: Path, *, with_shape: bool = False) -> tuple[list[str], ...]:
    """(outputs, expected) from ``write_jsonl``'s file, and the shapes when ``with_shape``."""
    outputs, expected, shapes = [], [], []
    loads = json.loads
    with path.open(encoding="utf-8") as f:
        for line in f:
            d = loads(line)
            outputs.append(d["output"])
            expected.append(d["expected"])
            shapes.append(d["shape"])
    return (outputs, expected, shapes) if with_shape else (outputs, expected)
