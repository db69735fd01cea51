"""The strict ``ReasoningTrace`` schema, its limits, text normalisation and content identity.

A trace is a prompt, an ordered list of reasoning steps and a final answer. Every text
field is normalised on the way in (Unicode NFC, CRLF -> LF, surrounding whitespace
stripped), so two traces that differ only in encoding details are stored once.

Identity: ``content_hash`` is the sha256 of the normalised prompt, steps and final answer,
with runs of whitespace collapsed to one space. The ``id`` is the producer's name for the
trace; the content hash is what deduplicates. An ``id`` already stored with different
content is rejected (``id_conflict``) rather than silently renamed.

Limits (documented in the README, enforced here and in the reader):

* a raw record (one JSONL line or one JSON array element) is at most ``MAX_RECORD_BYTES``;
  larger records are rejected before they are parsed;
* ``prompt`` at most 32,000 characters, each step at most 8,000, ``final_answer`` at most
  4,000; at most 256 steps; ids at most 128 characters of ``[A-Za-z0-9._:/-]``;
* metadata: ``source``, ``category`` at most 64 characters; at most 32 tags of 64;
* no text holds a NUL character (U+0000): PostgreSQL cannot store one.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

SCHEMA_VERSION = "1"
MAX_RECORD_BYTES = 1 << 20  # 1 MiB per raw record; bigger ones are rejected unread
MAX_PROMPT_CHARS = 32_000
MAX_STEP_CHARS = 8_000
MAX_STEPS = 256
MAX_ANSWER_CHARS = 4_000
MAX_ID_CHARS = 128
MAX_LABEL_CHARS = 64
MAX_TAGS = 32

ID_PATTERN = r"^[A-Za-z0-9._:/-]+$"


# PostgreSQL's text cannot hold U+0000: a trace that SQLite would store would fail the PostgreSQL
# COPY of its whole chunk, on every re-run. Rejected the same on both backends, in every text. The
# validators below test for it inline: a call per text cost 4% of validating a trace.
NUL_MESSAGE = "contains a NUL character (U+0000), which the trace store cannot hold"


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError(NUL_MESSAGE)
    return text


def text_type(max_chars: int) -> object:
    """A normalised text of at most ``max_chars`` characters (after normalisation), non-empty, no NUL.

    One validator does all four, not one ``AfterValidator`` each plus ``Field(max_length=)``: after
    a Python validator pydantic checks the length in Python too, and every validator is a Python
    call per text. Three calls per text were half of ``model_validate_json``'s time on a trace.
    """

    def validate(text: str) -> str:
        # Normalise: LF line ends, NFC (cheap to confirm for a text that already is), no
        # surrounding whitespace. Inline, not a function of its own: a call per text costs.
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if not text.isascii() and not unicodedata.is_normalized("NFC", text):
            text = unicodedata.normalize("NFC", text)
        text = text.strip()
        if not text:
            raise ValueError("must not be empty or only whitespace")
        if "\x00" in text:  # before the length, as when these were separate validators
            raise ValueError(NUL_MESSAGE)
        if len(text) > max_chars:
            raise PydanticCustomError(
                "string_too_long",
                "String should have at most {max_length} characters, not {length}",
                {"max_length": max_chars, "length": len(text)},
            )
        return text

    return Annotated[str, AfterValidator(validate), WithJsonSchema({"type": "string", "maxLength": max_chars})]


def _label(text: str) -> str:
    if "\x00" in text:
        raise ValueError(NUL_MESSAGE)
    return text.lower()


Label = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_LABEL_CHARS),
    AfterValidator(_label),
]
ExtraText = Annotated[str, AfterValidator(_no_nul)]
Scalar = ExtraText | int | float | bool | None


class TraceMetadata(BaseModel):
    """Where a trace comes from and how it is classified; used by dataset specs to select."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    source: Label = "unknown"  # producer: a generator name, "reasoning_gym:<family>", a file's origin
    category: Label = "general"  # task family, e.g. arithmetic, card_game
    difficulty: Literal["easy", "medium", "hard"] = "medium"
    tags: Annotated[list[Label], Field(max_length=MAX_TAGS, default_factory=list)]
    # Free-form scalars kept verbatim (e.g. a generator's variables); not part of identity.
    extra: Annotated[dict[ExtraText, Scalar], Field(max_length=64, default_factory=dict)]


class ReasoningTrace(BaseModel):
    """One reasoning trace: prompt -> ordered steps -> final answer."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    id: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID_CHARS, pattern=ID_PATTERN),
    ]
    prompt: text_type(MAX_PROMPT_CHARS)
    steps: Annotated[list[text_type(MAX_STEP_CHARS)], Field(min_length=1, max_length=MAX_STEPS)]
    final_answer: text_type(MAX_ANSWER_CHARS)
    metadata: TraceMetadata = Field(default_factory=TraceMetadata)
    schema_version: Literal["1"] = SCHEMA_VERSION

    @property
    def content_hash(self) -> str:
        return content_hash(self.prompt, self.steps, self.final_answer)


# json's C string quoter: ``json_quote(s)`` is exactly how ``json.dumps(s, ensure_ascii=False)`` writes
# a string. Composing it by hand gives the bytes of ``json.dumps(..., ensure_ascii=False,
# separators=(",", ":"))`` for strings and lists of strings at a third of the cost (the encoder's
# per-call setup dominates for short values); a test pins the equality.
json_quote = json.encoder.c_encode_basestring or json.encoder.py_encode_basestring


def json_string_list(items: list[str]) -> str:
    """``json.dumps(items, ensure_ascii=False, separators=(",", ":"))`` for a list of strings."""
    return f"[{','.join(map(json_quote, items))}]"


def collapse_whitespace(text: str) -> str:
    """``" ".join(text.split())``: whitespace runs as one space, none at either end.

    Most texts have nothing to collapse, and splitting one into words costs far more than
    proving that. Every whitespace character but the ASCII space is non-printable (Unicode
    separators and control characters), so a printable text with no double space and no space
    at either end is already collapsed.
    """
    if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        return text
    return " ".join(text.split())


def content_hash(prompt: str, steps: list[str], final_answer: str) -> str:
    """sha256 over already-normalised texts, whitespace runs collapsed (cosmetic reflow dedupes).

    The hashed bytes are the compact JSON ``[prompt, [steps...], final_answer]`` (UTF-8, no ASCII
    escaping): stored hashes are identities, so this form must never change.
    """
    canonical = (
        f"[{json_quote(collapse_whitespace(prompt))},{json_string_list([collapse_whitespace(s) for s in steps])},"
        f"{json_quote(collapse_whitespace(final_answer))}]"
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def lone_surrogate_path(value: object, path: str = "") -> str | None:
    """Dotted path of the first string in decoded JSON ``value`` that holds a lone surrogate, or None.

    Python's json decodes an escape such as ``\\ud800`` without its pair into a str that UTF-8
    cannot encode: stored or written out, it fails (a trace failed its whole chunk on every
    re-run). pydantic's JSON parser refuses such input; this is for what ``json.loads`` read. A key
    that holds one is reported at its parent's path, because the path itself is stored.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "<record>"
    elif isinstance(value, dict):
        for key, item in value.items():
            if lone_surrogate_path(key) is not None:
                return path or "<record>"
            if (found := lone_surrogate_path(item, f"{path}.{key}" if path else key)) is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if (found := lone_surrogate_path(item, f"{path}.{i}" if path else str(i))) is not None:
                return found
    return None


def describe_validation_error(error: ValidationError, limit: int = 3) -> tuple[str, str]:
    """(field, message) for the first errors of a pydantic error, field as a dotted path.

    ``steps.0`` names the first step; the message keeps pydantic's wording, which says
    what was expected and what was found. Further errors are appended as ``field: message``.
    """
    parts = []
    fields = []
    for item in error.errors(include_url=False)[:limit]:
        loc = ".".join(str(p) for p in item["loc"]) or "<record>"
        fields.append(loc)
        msg = item["msg"]
        if item["type"] == "missing":
            msg = "required field is missing"
        elif item["type"] == "extra_forbidden":
            msg = f"unknown field (not in the {error.title} schema)"
        parts.append(msg if not parts else f"{loc}: {msg}")  # the first field is returned separately
    more = error.error_count() - limit
    if more > 0:
        parts.append(f"(+{more} more)")
    return fields[0] if fields else "<record>", "; ".join(parts)

