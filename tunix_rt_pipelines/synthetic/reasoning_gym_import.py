"""Users get reasoning-gym's task families as traces: generate entries, write them as JSONL.

The entries are written in reasoning-gym's own shape (``question``, ``answer``,
``metadata``) and ingested like any other file; the reader converts them (see
``traces.parse``). Families whose entries carry ``metadata.answer_cot`` (e.g.
``gsm_symbolic``) become traces; the others are rejected with that reason, so the
counts say how much of a family was usable.
"""

from __future__ import annotations

import json
from pathlib import Path


def families() -> list[str]:
    import reasoning_gym

    return sorted(reasoning_gym.factory.DATASETS)


def write_reasoning_gym_jsonl(family: str, size: int, seed: int, path: Path) -> int:
    """Generate ``size`` entries of ``family`` with ``seed`` into ``path``; returns entries written."""
    import reasoning_gym

    if family not in reasoning_gym.factory.DATASETS:
        raise ValueError(f"unknown reasoning-gym family {family!r}; e.g. gsm_symbolic (see `tunix-rt import-gym --list`)")
    dataset = reasoning_gym.create_dataset(family, size=size, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for entry in dataset:
            f.write(json.dumps(entry, ensure_ascii=False, default=str))
            f.write("\n")
            n += 1
    return n
