"""Export a snapshot split as JSONL in the shapes trainers take.

* ``rendered``: ``{"prompt", "completion"}`` already wrapped by the snapshot's template:
  what TRL's standard prompt-completion format and our Tunix backend consume as is.
* ``conversational``: TRL's conversational prompt-completion, ``{"prompt": [user turn],
  "completion": [assistant turn]}``; TRL applies the model's own chat template.
* ``messages``: ``{"messages": [user, assistant]}`` for chat-style SFT trainers.
* ``text``: ``{"text": prompt + completion}`` for plain language-model training.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq

from tunix_rt_pipelines.core.artifacts import ArtifactStore
from tunix_rt_pipelines.datasets.templates import get_template

FORMATS = ("rendered", "conversational", "messages", "text")


def export_split(manifest: dict, artifacts: ArtifactStore, split: str, fmt: str, out: Path) -> int:
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")
    entry = manifest["files"].get(f"{split}.parquet")
    if entry is None:
        raise ValueError(f"split {split!r} not in dataset {manifest['digest'][:12]}; splits: train, validation")
    table = pq.read_table(io.BytesIO(artifacts.get_bytes(entry["sha256"])))
    template = get_template(manifest["template"]["key"])
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with out.open("w", encoding="utf-8") as f:
        for row in table.to_pylist():
            body = template.render_body(row["steps"], row["final_answer"])
            if fmt == "rendered":
                obj = {"prompt": row["sft_prompt"], "completion": row["sft_completion"]}
            elif fmt == "conversational":
                obj = {
                    "prompt": [{"role": "user", "content": row["prompt"]}],
                    "completion": [{"role": "assistant", "content": body}],
                }
            elif fmt == "messages":
                obj = {"messages": [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": body}]}
            else:
                obj = {"text": row["sft_prompt"] + row["sft_completion"]}
            obj["id"] = row["trace_id"]
            f.write(json.dumps(obj, ensure_ascii=False))
            f.write("\n")
            n += 1
    return n
