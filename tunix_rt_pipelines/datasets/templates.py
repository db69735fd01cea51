"""SFT rendering: a trace becomes a (prompt, completion) pair through a named, versioned template.

The completion is the reasoning, one step per line, then ``#### <answer>`` (the marker
lm-eval-harness's GSM8K task and reasoning-gym use, which our answer extraction reads).
Chat templates wrap the user turn and close the model turn with the family's end-of-turn
token; BOS/EOS are the tokenizer's business, not the template's.

A template's hash covers every string that shapes the output, so a changed template is a
different dataset digest and never silently reuses a model trained on the old text.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class SftTemplate:
    name: str  # family of the format: plain | gemma | qwen
    version: int  # bumped on any change to the strings below
    prompt_format: str  # wraps the user's prompt; must contain {prompt}
    completion_suffix: str  # closes the model's turn (end-of-turn token for chat formats)
    answer_marker: str = "#### "  # precedes the final answer on the completion's last line

    @property
    def key(self) -> str:
        return f"{self.name}@v{self.version}"

    @property
    def hash(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def render_prompt(self, prompt: str) -> str:
        return self.prompt_format.format(prompt=prompt)

    def render_body(self, steps: list[str], final_answer: str) -> str:
        """The model's answer without turn markers: what a chat-template-aware trainer wants."""
        return "\n".join(steps) + f"\n{self.answer_marker}{final_answer}"

    def render_completion(self, steps: list[str], final_answer: str) -> str:
        return self.render_body(steps, final_answer) + self.completion_suffix


TEMPLATES: dict[str, SftTemplate] = {
    t.key: t
    for t in (
        SftTemplate("plain", 1, "Question: {prompt}\nAnswer step by step.\n", ""),
        SftTemplate(
            "gemma", 1, "<start_of_turn>user\n{prompt}<end_of_turn>\n<start_of_turn>model\n", "<end_of_turn>"
        ),
        SftTemplate("qwen", 1, "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>"),
    )
}


def get_template(key: str) -> SftTemplate:
    """``name@vN``; a bare name means its newest version."""
    if key in TEMPLATES:
        return TEMPLATES[key]
    versions = [t for t in TEMPLATES.values() if t.name == key]
    if versions:
        return max(versions, key=lambda t: t.version)
    raise ValueError(f"unknown SFT template {key!r}; known: {', '.join(sorted(TEMPLATES))}")
