"""Turn one raw record into a validated ``ReasoningTrace`` or a reasoned rejection.

Two record shapes are accepted:

* the native ``ReasoningTrace`` shape (``id``, ``prompt``, ``steps``, ``final_answer``, ...);
* reasoning-gym's entry shape (``question``, ``answer``, ``metadata.answer_cot``, with
  ``metadata.source_dataset`` and ``source_index``), converted to a trace: the working in
  ``answer_cot`` becomes the steps (one per non-blank line; a closing ``#### N`` line is
  the answer, not a step). Entries of families without ``answer_cot`` have no reasoning
  and are rejected with that reason.

The fast path validates straight from bytes; only a record that fails it is decoded and
parsed again, to say precisely what is wrong (encoding, JSON syntax or a field).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from pydantic import ValidationError

from tunix_rt_pipelines.traces.reader import RawRecord
from tunix_rt_pipelines.traces.schema import ReasoningTrace, describe_validation_error, lone_surrogate_path


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str  # stable code: invalid_json | encoding | schema | too_large | truncated | after_array | id_conflict
    field: str  # dotted path of the offending field, or <record>
    message: str  # what is wrong, in words


# The model's validator, called directly: ``model_validate_json`` is a Python function around it,
# and calling that cost 5% of validating a trace.
_validate_json = ReasoningTrace.__pydantic_validator__.validate_json


def parse_record(record: RawRecord) -> ReasoningTrace | Rejection:
    if record.problem is not None:
        return Rejection(record.problem, "<record>", record.detail)
    return parse_bytes(record.data)


def parse_bytes(data: bytes) -> ReasoningTrace | Rejection:
    """A record's bytes (one JSON text) as a trace, or why not."""
    try:
        return _validate_json(data)
    except ValidationError as fast_error:
        return _diagnose(data, fast_error)


def _diagnose(data: bytes, fast_error: ValidationError) -> ReasoningTrace | Rejection:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return Rejection("encoding", "<record>", f"not valid UTF-8: byte 0x{data[e.start]:02x} at offset {e.start}")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        return Rejection("invalid_json", "<record>", f"invalid JSON at column {e.colno}: {e.msg}")
    except (ValueError, RecursionError):  # beyond Python's json limits: nesting depth, integer digits
        return Rejection("invalid_json", "<record>", describe_validation_error(fast_error)[1])
    if (where := lone_surrogate_path(obj)) is not None:
        return Rejection("encoding", where, "holds an escaped lone surrogate (\\ud800-\\udfff without its pair): "
                                            "not Unicode text, and UTF-8 cannot store it")
    if not isinstance(obj, dict):
        return Rejection("schema", "<record>", f"expected a JSON object, found {type(obj).__name__}")
    if "prompt" not in obj and "question" in obj:
        return _from_reasoning_gym(obj)
    field, message = describe_validation_error(fast_error)
    return Rejection("schema", field, message)


def _from_reasoning_gym(entry: dict) -> ReasoningTrace | Rejection:
    meta = entry.get("metadata")
    if not isinstance(meta, dict):
        return Rejection("schema", "metadata", "reasoning-gym entry without a metadata object")
    cot = meta.get("answer_cot")
    if not isinstance(cot, str) or not cot.strip():
        family = meta.get("source_dataset", "?")
        return Rejection(
            "schema",
            "metadata.answer_cot",
            f"reasoning-gym entry of family {family!r} has no step-by-step working (answer_cot)",
        )
    lines = [ln.strip() for ln in cot.splitlines() if ln.strip()]
    if lines and lines[-1].startswith("####"):
        lines = lines[:-1]
    family = str(meta.get("source_dataset", "unknown"))
    difficulty = meta.get("difficulty")
    extra = {
        k: v
        for k, v in meta.items()
        if k not in ("answer_cot", "source_dataset", "difficulty", "variables")
        and (v is None or isinstance(v, (str, int, float, bool)))
    }
    candidate = {
        "id": f"rg:{family}:{meta.get('source_index', entry.get('id', 'x'))}:{_entry_digest(entry)}",
        "prompt": entry.get("question"),
        "steps": lines,
        "final_answer": entry.get("answer"),
        "metadata": {
            "source": f"reasoning_gym:{family}",
            "category": family,
            "difficulty": _gym_difficulty(difficulty),
            "tags": ["reasoning_gym"],
            "extra": extra,
        },
    }
    if isinstance(candidate["final_answer"], (int, float)) and not isinstance(candidate["final_answer"], bool):
        candidate["final_answer"] = str(candidate["final_answer"])
    try:
        return ReasoningTrace.model_validate(candidate)
    except ValidationError as e:
        field, message = describe_validation_error(e)
        return Rejection("schema", f"reasoning_gym->{field}", message)


def _entry_digest(entry: dict) -> str:
    """Ten hex digits of the entry's question and answer. The source index restarts with every
    seed and file, so without them a second draw of a family was all id conflicts."""
    question_and_answer = json.dumps([entry.get("question"), entry.get("answer")], ensure_ascii=False, default=str)
    return hashlib.sha256(question_and_answer.encode()).hexdigest()[:10]


def _gym_difficulty(value: object) -> str:
    # reasoning-gym reports a number (1.0 = default level) or a dict of ranges.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "easy" if value < 1 else "medium" if value < 2 else "hard"
    return "medium"
