"""High Card Duel episodes: deal, compare, explain, name the winner.

Stands in for the seeds' UNGAR "High Card Duel". Two players are dealt one card each per
round from one shuffled 52-card deck (no card twice in a match). The higher rank wins the
round; equal ranks are broken by suit, spades > hearts > diamonds > clubs. Whoever wins
more rounds wins the match; an odd number of rounds means there is always a winner.
The prompt shows the deal, so the answer is checkable from the prompt alone.
"""

from __future__ import annotations

import random

from tunix_rt_pipelines.traces.schema import ReasoningTrace

RANKS = ["2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K", "A"]
RANK_VALUE = {r: i + 2 for i, r in enumerate(RANKS)}
SUITS = ["♣", "♦", "♥", "♠"]  # ascending tie-break order
SUIT_NAME = {"♣": "clubs", "♦": "diamonds", "♥": "hearts", "♠": "spades"}
PLAYERS = [("Alice", "Bob"), ("Ana", "Ben"), ("Kai", "Lena"), ("Mira", "Tom")]
ROUNDS_FOR = {"easy": 1, "medium": 3, "hard": 5}

Card = tuple[str, str]


def _card(c: Card) -> str:
    return f"{c[0]}{c[1]}"


def _beats(a: Card, b: Card) -> tuple[bool, str]:
    """(a wins?, why) for one round."""
    va, vb = RANK_VALUE[a[0]], RANK_VALUE[b[0]]
    if va != vb:
        hi, lo = (a, b) if va > vb else (b, a)
        return va > vb, f"{hi[0]} ({RANK_VALUE[hi[0]]}) outranks {lo[0]} ({RANK_VALUE[lo[0]]})"
    sa, sb = SUITS.index(a[1]), SUITS.index(b[1])
    hi, lo = (a, b) if sa > sb else (b, a)
    return sa > sb, f"equal ranks, and {SUIT_NAME[hi[1]]} beat {SUIT_NAME[lo[1]]}"


def episode(r: random.Random, difficulty: str) -> tuple[str, list[str], str]:
    p1, p2 = r.choice(PLAYERS)
    n = ROUNDS_FOR[difficulty]
    deck = [(rank, suit) for rank in RANKS for suit in SUITS]
    r.shuffle(deck)
    deals = [(deck[2 * i], deck[2 * i + 1]) for i in range(n)]
    lines = [f"Round {i + 1}: {p1} {_card(a)}, {p2} {_card(b)}" for i, (a, b) in enumerate(deals)]
    prompt = (
        f"High Card Duel between {p1} and {p2}, {n} round{'s' if n > 1 else ''}. In each round the higher "
        f"rank wins (A high, 2 low); equal ranks are decided by suit, spades > hearts > diamonds > clubs. "
        f"The player who wins more rounds wins the match. Cards dealt: " + "; ".join(lines) + ". Who wins the match?"
    )
    steps = []
    wins = {p1: 0, p2: 0}
    for i, (a, b) in enumerate(deals):
        first_wins, why = _beats(a, b)
        winner = p1 if first_wins else p2
        wins[winner] += 1
        steps.append(f"Round {i + 1}: {_card(a)} against {_card(b)}: {why}, so {winner} wins the round.")
    champion = p1 if wins[p1] > wins[p2] else p2
    if n > 1:
        steps.append(f"{p1} won {wins[p1]} round(s) and {p2} won {wins[p2]}, so {champion} wins the match.")
    return prompt, steps, champion


def generate_card_games(n: int, seed: int, *, id_prefix: str = "gen:card", source: str = "synthetic.card_game") -> list[ReasoningTrace]:
    r = random.Random(f"card_game:{seed}")
    levels = ["easy", "medium", "hard"]
    out: list[ReasoningTrace] = []
    seen: set[str] = set()
    attempt = 0
    while len(out) < n:
        i = len(out)
        attempt += 1
        if attempt > 100 * n:
            raise RuntimeError(f"could not draw {n} distinct traces; the number ranges are too small")
        difficulty = levels[i % 3]
        prompt, steps, winner = episode(r, difficulty)
        trace = (
            ReasoningTrace.model_validate(
                {
                    "id": f"{id_prefix}:{seed}:{i}",
                    "prompt": prompt,
                    "steps": steps,
                    "final_answer": winner,
                    "metadata": {
                        "source": source,
                        "category": "card_game",
                        "difficulty": difficulty,
                        "tags": ["high_card_duel", f"rounds_{ROUNDS_FOR[difficulty]}"],
                    },
                }
            )
        )
        if trace.content_hash in seen:  # small number ranges repeat; keep traces distinct
            continue
        seen.add(trace.content_hash)
        out.append(trace)
    return out
