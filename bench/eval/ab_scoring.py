"""A/B of ``answer_correctness@v1`` scoring: this checkout against an earlier git revision, in one process.

``@v1`` is locked, so a change to its code may only make it faster: this script checks first that
both revisions give identical scores (outcome, extracted answer, extractor, strict and flexible
match) on the benchmark's predictions and on random strings built from markers, think tags,
separators and Unicode dashes and digits, and fails if a single item differs.

Then it times both. This VM's speed drifts by ±30% from minute to minute, so separate runs
compare VM phases as much as code. Here the items are cut into chunks of ``--chunk`` items, each
chunk is scored by both revisions back to back (the order alternating), and each side's times are
summed over ``--rounds`` rounds: the drift falls on both sides alike. Reported per shape of
``predictions.py`` and for the mix.

The earlier revision's four scoring modules (``answers``, ``extraction``, ``lm_eval``,
``normalize``) are read with ``git show REV:path`` into a temporary package whose imports are
renamed, so both versions live side by side.

Usage::

    .venv/bin/python bench/eval/ab_scoring.py --against 25f3dc0
    .venv/bin/python bench/eval/ab_scoring.py --against HEAD --items 100000 --rounds 5
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from predictions import SHAPES, make_predictions  # noqa: E402

MODULES = ("answers", "extraction", "lm_eval", "normalize")
PACKAGE = "tunix_rt_pipelines.evaluation."


def load_revision(rev: str, into: Path):  # noqa: ANN201  (the module's score_item)
    """``score_item`` of revision ``rev``, imported from a renamed copy of its scoring modules."""
    pkg = into / "scoring_at_revision"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name in MODULES:
        source = subprocess.run(["git", "show", f"{rev}:{PACKAGE.replace('.', '/')}{name}.py"], cwd=ROOT,
                                check=True, capture_output=True, text=True).stdout
        (pkg / f"{name}.py").write_text(source.replace(PACKAGE, "scoring_at_revision."))
    sys.path.insert(0, str(into))
    return importlib.import_module("scoring_at_revision.answers").score_item


def random_strings(n: int, seed: int) -> list[tuple[str, str]]:
    """Outputs made of the pieces the extraction rules turn on, with expected answers of every kind."""
    r = random.Random(seed)
    pieces = ["12", "-3", "1,200", "$5", "4.", "0.5", " ", "\n", "#### ", "####", "##### ", "Answer: ", "answer：",
              "**Answer:** ", "ANSWER:", "nswer", "x", "Z", "-", "−", "–", ".", ",", "$", "%", ")", "; ", "? ", "#",
              "<think>", "</think>", "<THINK >", "<think a=1>", "</Think\n>", "<thinking>", "<think", "</think", "<b>",
              "\\boxed{7}", "\\boxed{", "}", "{", "\\frac{1}{2}", "−2", "**", "= 9", "3/6", "5%", "7.00", "€3", "1",
              "0", ".5", "\u00a0", "١٢", "Alice", "x?", "**x**", "“x”", " or ", "\\text{x}", "×"]
    expected = ["12", "-3", "1200", "5", "7", "9", "0.5", "1/2", "$5", "1,200", "x", "alice", "[invalid]", "5."]
    return [("".join(r.choice(pieces) for _ in range(r.randint(0, 16))), r.choice(expected)) for _ in range(n)]


def digest(score_item, pairs: list[tuple[str, str]]) -> str:  # noqa: ANN001
    h = hashlib.sha256()
    for output, expected in pairs:
        s = score_item(output, expected)
        h.update(repr((s.outcome, s.extracted, s.extractor, s.strict_match, s.flexible_match)).encode())
    return h.hexdigest()


def interleaved(a, b, pairs: list[tuple[str, str]], *, chunk: int, rounds: int) -> tuple[float, float]:  # noqa: ANN001
    """(items/s of a, items/s of b), chunk by chunk, alternating which goes first."""
    spent = [0.0, 0.0]
    chunks = [pairs[i:i + chunk] for i in range(0, len(pairs), chunk)]
    for r in range(rounds):
        for k, part in enumerate(chunks):
            for side in ((0, 1) if (k + r) % 2 else (1, 0)):
                fn = (a, b)[side]
                t0 = time.perf_counter()
                _ = [fn(o, e) for o, e in part]  # kept, as score_items keeps them
                spent[side] += time.perf_counter() - t0
    n = len(pairs) * rounds
    return n / spent[0], n / spent[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--against", required=True, help="the earlier git revision (a commit, tag or HEAD)")
    ap.add_argument("--items", type=int, default=300_000, help="benchmark predictions (seed 11, as run.py)")
    ap.add_argument("--random", type=int, default=400_000, help="random strings for the identity check")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=2_000, help="items per timed chunk")
    args = ap.parse_args()

    from tunix_rt_pipelines.evaluation.answers import score_item as ours

    with tempfile.TemporaryDirectory() as tmp:
        theirs = load_revision(args.against, Path(tmp))
        outputs, expected, shapes = make_predictions(args.items)
        pairs = list(zip(outputs, expected))
        check = pairs + random_strings(args.random, seed=7)
        same = digest(theirs, check) == digest(ours, check)
        print(f"identical scores on {len(check):,} strings: {'yes' if same else 'NO'}")
        if not same:
            sys.exit(f"the scores differ from {args.against}'s: answer_correctness@v1 is locked")
        print(f"{'shape':14s} {args.against + ' items/s':>16s} {'this checkout':>14s} {'speedup':>8s}")
        for shape in [s for s, _ in SHAPES] + ["mix"]:
            part = pairs if shape == "mix" else [p for p, s in zip(pairs, shapes) if s == shape]
            before, after = interleaved(theirs, ours, part, chunk=args.chunk, rounds=args.rounds)
            print(f"{shape:14s} {before:16,.0f} {after:14,.0f} {after / before:7.2f}x", flush=True)


if __name__ == "__main__":
    main()
