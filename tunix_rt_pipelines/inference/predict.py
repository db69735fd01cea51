"""Predictions over an eval set: render each prompt with the training template, generate, record.

Per item: item id, prompt hash, raw output, tokens generated, latency, whether EOS was reached,
and a first answer check (``marked_answer``). Per run: what determines the outputs (model
digest, backend, dtype, batch size, sampling parameters, seed, template hash), so two
prediction sets can be compared knowing what differed.

The answer check here is deliberately narrow (the training template's ``#### `` marker, last
occurrence, compared after trimming); the evaluation judges score stored predictions with the
full extraction and normalisation, without generating again.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from tunix_rt_pipelines.datasets.templates import get_template
from tunix_rt_pipelines.evalsets.schema import EvalItem

PREDICTIONS_FORMAT = "tunix-rt-predictions/1"
_MARKED = re.compile(r"####\s*(.+?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class SamplingSettings:
    max_new_tokens: int = 160  # the eval items' worked answers fit in ~120 tokens of the local BPE
    batch_size: int = 16  # prompts per generate call
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0  # nucleus sampling threshold when temperature > 0
    seed: int = 0  # sampling seed (greedy ignores it)


def marked_answer(output: str) -> str | None:
    """The text after the last ``####`` marker, or None when the output has none."""
    found = _MARKED.findall(output)
    return found[-1].strip().rstrip(".").replace(",", "") if found else None


def prompt_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def predict(
    items: list[EvalItem],
    model_dir: Path,
    *,
    backend: str,
    template_key: str,
    sampling: SamplingSettings = SamplingSettings(),
    device: str = "auto",
    dtype: str = "fp32",
) -> tuple[list[dict], dict]:
    """(per-item records, run record) for ``items`` on the HF folder ``model_dir``."""
    if backend == "torch":
        from tunix_rt_pipelines.inference.torch_generate import generate
    elif backend == "jax":
        from tunix_rt_pipelines.inference.jax_generate import generate
    else:
        raise ValueError(f"backend: {backend!r} is not one of 'jax', 'torch'")
    template = get_template(template_key)
    prompts = [template.render_prompt(item.prompt) for item in items]
    gens = generate(model_dir, prompts, max_new_tokens=sampling.max_new_tokens, batch_size=sampling.batch_size,
                    temperature=sampling.temperature, top_p=sampling.top_p, seed=sampling.seed, device=device,
                    dtype=dtype)
    records = []
    for item, prompt, gen in zip(items, prompts, gens, strict=True):
        answer = marked_answer(gen.text)
        records.append({
            "item_id": item.item_id,
            "prompt_hash": prompt_hash(prompt),
            "section": item.section,
            "category": item.category,
            "difficulty": item.difficulty,
            "expected_answer": item.expected_answer,
            "output": gen.text,
            "tokens_generated": gen.n_tokens,
            "latency_s": round(gen.latency_s, 5),
            "stopped_at_eos": gen.stopped_at_eos,
            "marked_answer": answer,
            "marked_answer_matches": answer is not None and answer == item.expected_answer.replace(",", ""),
        })
    run = {
        "format": PREDICTIONS_FORMAT,
        "backend": backend,
        "dtype": dtype,
        "sampling": asdict(sampling),
        "template": {"key": template.key, "hash": template.hash},
        "n_items": len(records),
    }
    return records, run


def summarize(records: list[dict]) -> dict:
    n = len(records)
    return {
        "n_items": n,
        "marked_answer_accuracy": round(sum(r["marked_answer_matches"] for r in records) / n, 4) if n else 0.0,
        "with_marker": sum(r["marked_answer"] is not None for r in records),
        "stopped_at_eos": sum(r["stopped_at_eos"] for r in records),
        "mean_tokens": round(sum(r["tokens_generated"] for r in records) / n, 1) if n else 0.0,
    }


def from_jsonl(data: bytes) -> tuple[list[dict], dict]:
    """(records, run) of a blob written by ``to_jsonl``."""
    lines = [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
    if not lines or "run" not in lines[0] or lines[0]["run"].get("format") != PREDICTIONS_FORMAT:
        raise ValueError(f"not a predictions blob of format {PREDICTIONS_FORMAT}")
    return lines[1:], lines[0]["run"]


def to_jsonl(records: list[dict], run: dict) -> bytes:
    """The run record first (``{"run": ...}``), then one line per item: one self-describing blob."""
    lines = [json.dumps({"run": run}, sort_keys=True)] + [json.dumps(r, ensure_ascii=False, sort_keys=True) for r in records]
    return ("\n".join(lines) + "\n").encode("utf-8")
