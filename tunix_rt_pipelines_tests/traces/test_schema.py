import json
import random
import sys

import pytest
from pydantic import ValidationError

from tunix_rt_pipelines.traces.schema import (
    MAX_PROMPT_CHARS,
    MAX_STEP_CHARS,
    MAX_STEPS,
    ReasoningTrace,
    collapse_whitespace,
    content_hash,
    describe_validation_error,
    json_string_list,
)
from tunix_rt_pipelines_tests.conftest import trace_dict


def test_text_is_nfc_normalised_with_lf_line_ends():
    t = ReasoningTrace.model_validate(trace_dict(1, prompt="Zoe\u0308 says\r\nhi  ", steps=["a\r\nb"]))
    assert t.prompt == "Zo\u00eb says\nhi"
    assert t.steps == ["a\nb"]


def test_content_hash_ignores_whitespace_reflow_but_not_wording():
    a = ReasoningTrace.model_validate(trace_dict(1, steps=["1 + 1 = 2."]))
    b = ReasoningTrace.model_validate(trace_dict(1, id="other", steps=["1  +\n1 = 2."]))
    c = ReasoningTrace.model_validate(trace_dict(1, steps=["1 + 1 = 3."]))
    assert a.content_hash == b.content_hash
    assert a.content_hash != c.content_hash


AWKWARD = ['quote " and back\\slash', "tab\tnew\nline", "\x00\x1f\x7f", "é ✓ 𝄞 \u2028", ""]


def test_json_string_list_writes_exactly_what_json_dumps_writes():
    assert json_string_list(AWKWARD) == json.dumps(AWKWARD, ensure_ascii=False, separators=(",", ":"))
    assert json_string_list([]) == "[]"


def test_content_hash_of_awkward_texts_never_changes():
    # Stored hashes are identities: this digest was computed by the first implementation
    # (json.JSONEncoder over [prompt, steps, answer]); any change here re-identifies every trace.
    digest = "84f6eb17dfd7bf57c82320cd3f3a9c531d20dbd5d69f4578eb9f04789bf9b0bc"
    assert content_hash("a  b", ["x \n y", *AWKWARD[:4]], "4\t2") == digest


def test_collapse_whitespace_is_split_and_join_on_every_whitespace_character():
    spaces = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    alphabet = [*spaces, " ", " ", "a", "é", "\u200d", "\xad", "\x00"]  # plus non-printable non-spaces
    r = random.Random(0)
    texts = ["".join(r.choices(alphabet, k=r.randint(0, 6))) for _ in range(50_000)] + spaces
    assert [collapse_whitespace(t) for t in texts] == [" ".join(t.split()) for t in texts]


def test_step_order_is_part_of_identity():
    a = ReasoningTrace.model_validate(trace_dict(1, steps=["x", "y"]))
    b = ReasoningTrace.model_validate(trace_dict(1, steps=["y", "x"]))
    assert a.content_hash != b.content_hash


def test_strict_types_do_not_coerce_numbers_to_text():
    with pytest.raises(ValidationError) as e:
        ReasoningTrace.model_validate_json(b'{"id":"a","prompt":"p","steps":["s"],"final_answer":4}')
    assert describe_validation_error(e.value)[0] == "final_answer"


def test_unknown_field_is_rejected_and_named():
    with pytest.raises(ValidationError) as e:
        ReasoningTrace.model_validate(trace_dict(1, answer="4"))
    field, message = describe_validation_error(e.value)
    assert field == "answer" and "unknown field" in message


@pytest.mark.parametrize("steps", [[], ["   "], ["ok"] * (MAX_STEPS + 1)])
def test_steps_must_be_present_non_blank_and_bounded(steps):
    with pytest.raises(ValidationError) as e:
        ReasoningTrace.model_validate(trace_dict(1, steps=steps))
    assert describe_validation_error(e.value)[0].startswith("steps")


@pytest.mark.parametrize("overrides, field, limit", [
    ({"prompt": "p" * (MAX_PROMPT_CHARS + 1)}, "prompt", MAX_PROMPT_CHARS),
    ({"steps": ["ok", "s" * (MAX_STEP_CHARS + 1)]}, "steps.1", MAX_STEP_CHARS),
])
def test_an_overlong_text_is_rejected_with_its_field_and_limit(overrides, field, limit):
    with pytest.raises(ValidationError) as e:
        ReasoningTrace.model_validate_json(json.dumps(trace_dict(1, **overrides)))
    assert describe_validation_error(e.value) == (field, f"String should have at most {limit} characters, not {limit + 1}")


def test_the_length_limit_applies_after_normalisation():
    padded = " " * 10 + "p" * MAX_PROMPT_CHARS + "\r\n"
    assert len(ReasoningTrace.model_validate(trace_dict(1, prompt=padded)).prompt) == MAX_PROMPT_CHARS


def test_ids_cannot_carry_path_or_spaces():
    with pytest.raises(ValidationError):
        ReasoningTrace.model_validate(trace_dict(1, id="a b"))


def test_labels_are_lowercased_for_selection():
    t = ReasoningTrace.model_validate(trace_dict(1, metadata={"source": "GSM", "category": "Arithmetic"}))
    assert (t.metadata.source, t.metadata.category) == ("gsm", "arithmetic")


@pytest.mark.parametrize("overrides, field", [
    ({"prompt": "a\x00b"}, "prompt"),
    ({"steps": ["fine", "nul\x00"]}, "steps.1"),
    ({"final_answer": "4\x00"}, "final_answer"),
    ({"metadata": {"tags": ["ok", "t\x00"]}}, "metadata.tags.1"),
    ({"metadata": {"extra": {"note": "x\x00"}}}, "metadata.extra.note"),
    ({"prompt": "\x00" * (MAX_PROMPT_CHARS + 1)}, "prompt"),  # too long as well: the NUL is what is said
])
def test_a_nul_character_is_rejected_and_its_field_named(overrides, field):
    with pytest.raises(ValidationError) as e:
        ReasoningTrace.model_validate_json(json.dumps(trace_dict(1, **overrides)))
    found, message = describe_validation_error(e.value)
    assert found.startswith(field) and "NUL" in message
