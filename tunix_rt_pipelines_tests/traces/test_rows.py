import json
import random
import re
import sys

import pytest

from tunix_rt_pipelines.traces.rows import encode_copy_line, hash_and_copy_line
from tunix_rt_pipelines.traces.schema import ReasoningTrace, TraceMetadata

SPACES = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
# Every whitespace character, what JSON escapes (quote, backslash, controls), what COPY escapes
# (tab, newlines, backslash), non-printable non-spaces, and plain text.
ALPHABET = [*SPACES, '"', "\\", "\x01", "\x7f", "\u200d", "\xad", "a", "é", "✓", "𝄞"]
PLAIN = [" ", "a", "é", "𝄞"]


def _trace(r: random.Random) -> ReasoningTrace:
    """A trace built without validation, so its texts can hold anything, surrounding spaces included."""

    def text() -> str:  # often plain, so that whole traces are: a space run is the only thing to see
        return "".join(r.choices(ALPHABET if r.random() < 0.3 else PLAIN, k=r.randint(1, 6)))

    steps = [text() for _ in range(r.randint(1, 3))]
    return ReasoningTrace.model_construct(
        id="t:1", prompt=text(), steps=steps, final_answer=text(), metadata=TraceMetadata(tags=["x"]),
        schema_version="1",
    )


def test_hash_and_copy_line_equal_content_hash_and_encode_copy_line():
    r = random.Random(0)
    for t in [_trace(r) for _ in range(30_000)]:
        assert hash_and_copy_line(t, "b1", "2026-01-01T00:00:00+00:00") == (
            t.content_hash,
            encode_copy_line(t.content_hash, t, "b1", "2026-01-01T00:00:00+00:00"),
        ), (t.prompt, t.steps, t.final_answer)


def test_hash_and_copy_line_of_a_validated_trace():
    t = ReasoningTrace.model_validate(
        {"id": "a:1", "prompt": "What is 2 × 3?", "steps": ["2 × 3 = 6."], "final_answer": "6",
         "metadata": {"tags": ["Times", "x\ty"], "extra": {"k": "v\\w"}}}
    )
    assert hash_and_copy_line(t, "b", "now") == (t.content_hash, encode_copy_line(t.content_hash, t, "b", "now"))


def _read_copy_line(line: str) -> list[str]:
    """The columns of a COPY text-format line, unescaped as the server reads them."""
    assert line.endswith("\n") and line.count("\n") == 1
    assert "\r" not in line  # the server refuses a literal carriage return in the data
    unescape = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
    return [re.sub(r"\\(.)", lambda m: unescape[m.group(1)], col) for col in line[:-1].split("\t")]


@pytest.mark.parametrize("prompt", ["Plain 2 × 3?", "Needs\tescaping\\"])  # the shared and the by-definition path
@pytest.mark.parametrize("labels", [  # (source, category, tags): one character that COPY escapes at a time
    ("s\tt", "c", ["x"]), ("s", "c\nd", ["x"]), ("s\rt", "c", ["x"]), ("s", "back\\slash", ["x"]),
    ("s", "c", ["x\ny", "plain"]), ("s", "c", ["plain"]),
])
def test_copy_line_columns_read_back_as_the_traces_fields(prompt, labels):
    source, category, tags = labels
    t = ReasoningTrace.model_validate(
        {"id": "a:1/x-y_z.2", "prompt": prompt, "steps": ["one", "two\nlines"], "final_answer": "6",
         "metadata": {"source": source, "category": category, "tags": tags}}
    )
    h, line = hash_and_copy_line(t, "b", "now")
    cols = _read_copy_line(line)
    assert cols[:4] == [t.content_hash, "a:1/x-y_z.2", "1", t.prompt] and h == t.content_hash
    assert json.loads(cols[4]) == t.steps and cols[5] == "6"
    assert (cols[6], cols[7], json.loads(cols[9])) == (source, category, tags)
    assert cols[11:] == ["2", str(len(t.prompt) + len("one") + len("two\nlines") + len("6")), "b", "now"]
