"""``llm_judge@<hash>``: a rubric judge backed by any OpenAI-compatible chat endpoint.

The endpoint may be vLLM, Ollama, a hosted API, or a local model folder (a registry download
or any HF folder) served by :mod:`tunix_rt_pipelines.inference.openai_server`. Each item's
output is put into the rubric's template, sent as one user message, and the reply is parsed
against a schema: ``{"score": ..., "verdict": "...", "rationale": "..."}``.

Parsing: think blocks are dropped (an unclosed ``<think>`` leaves nothing), then the first
JSON object in the reply is taken, so ```json fences and surrounding prose are fine. The
object must hold all three fields: ``score`` a finite number (``true`` and ``"0.8"`` are
refused), within the rubric's scale: ``0-1`` (any number in [0, 1]) or ``1-5`` (an integer,
normalised to ``(s - 1) / 4``). Extra fields are ignored.

Outcomes: ``correct`` when the normalised score is at least ``pass_threshold``, else ``wrong``;
the normalised score is stored in ``score``. A judge that cannot give a grade never gives a
zero: the item is ``unscored`` with a reason in ``detail`` (left out of every mean, tallied
by the scorecard), one of ``unreachable: ...`` (connection refused or dropped), ``timeout:
...``, ``http_<status>: ...``, ``unparseable: ...`` (no JSON object, a missing field, a score
out of range, or a response that is not the OpenAI shape).

Retries: only after a connection error, a 429 or a 5xx, up to ``max_retries`` more attempts
with doubling waits. Not after a timeout (the request may still be running, and each retry
would add another full timeout per item) nor after a bad reply (greedy decoding would give
the same reply again).

Metric name: ``llm_judge@`` + the first 12 hex digits of the sha256 of everything that decides
the grade: rubric (name, scale, template), model, temperature, max_tokens, pass_threshold,
json_mode and ``JUDGE_VERSION`` (the request and parsing code). An evaluation's id hashes
this name with the predictions, so another rubric or model is another evaluation. The
endpoint's URL, the API key, timeouts, retries and concurrency are not in the hash: they
change whether a grade arrives, not what it is. The URL is recorded in the scorecard.

Rows carry the same keys as ``answer_correctness@v1``'s: ``extracted``, ``extractor`` and the
lm-eval matches are what ``answer_correctness@v1`` extracts from the output (judge-independent,
so the two judges can be compared on one row); ``outcome``, ``score`` and ``detail`` are the
judge's. Records may carry a ``prompt``; predictions blobs store only its hash, and the
template then says the problem was not recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tunix_rt_pipelines.evaluation.answers import score_item
from tunix_rt_pipelines.evaluation.evaluate import trace_structure_summary
from tunix_rt_pipelines.evaluation.extraction import strip_think
from tunix_rt_pipelines.evaluation.scorecard import scorecard
from tunix_rt_pipelines.evaluation.trace_structure import score_traces

JUDGE_VERSION = 1  # bump when the request or the parsing changes: a new metric hash
SCALES = ("0-1", "1-5")
_PLACEHOLDER = re.compile(r"\{(prompt|expected_answer|output)\}")
NOT_RECORDED = "(the problem statement was not recorded; judge from the reference answer)"
_REPLY_KEPT = 500  # characters of an unparseable reply kept in ``detail``, enough to see what went wrong

DEFAULT_TEMPLATE = """You are grading a model's answer to a maths or reasoning problem.

Problem:
{prompt}

Reference answer:
{expected_answer}

Model output:
{output}

Score 1 when the output's final answer equals the reference answer and its reasoning supports it;
0.5 when the final answer is right but the reasoning has a real error or gap;
0 when the final answer is wrong or missing.
Reply with one JSON object and nothing else:
{"score": <a number from 0 to 1>, "verdict": "correct" | "partially_correct" | "incorrect", "rationale": "<one or two sentences>"}"""


@dataclass(frozen=True)
class Rubric:
    name: str  # recorded with every grade; part of the metric hash
    template: str  # the user message; {prompt}, {expected_answer}, {output} are filled in, other braces kept
    scale: str = "0-1"  # "0-1": any number in [0, 1]; "1-5": an integer 1..5, normalised to (s - 1) / 4

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"rubric {self.name!r}: scale {self.scale!r} is not one of {', '.join(SCALES)}")
        if "{output}" not in self.template:
            raise ValueError(f"rubric {self.name!r}: the template has no {{output}} placeholder")

    def render(self, record: Mapping) -> str:
        """The template with the record's fields, in one pass: text inside an inserted field (an output that
        contains "{prompt}") is never substituted again, and other braces (the JSON example) stay as written."""
        values = {"prompt": str(record.get("prompt") or NOT_RECORDED),
                  "expected_answer": str(record["expected_answer"]), "output": str(record["output"])}
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.template)

    @classmethod
    def from_file(cls, path: Path) -> Rubric:
        """A ``.yaml``/``.yml``/``.json`` mapping ``{name, template, scale?}``, or any other file as the
        template itself (named after the file, scale ``0-1``)."""
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() not in (".yaml", ".yml", ".json"):
            return cls(name=path.stem, template=text)
        data = yaml.safe_load(text)  # YAML is a superset of JSON
        if not isinstance(data, dict) or not isinstance(data.get("template"), str):
            raise ValueError(f"{path}: expected a mapping with a string 'template' (and 'name', 'scale')")
        return cls(name=str(data.get("name") or path.stem), template=data["template"],
                   scale=str(data.get("scale", "0-1")))


DEFAULT_RUBRIC = Rubric(name="final_answer_and_reasoning@v1", template=DEFAULT_TEMPLATE)


@dataclass(frozen=True)
class LLMJudgeConfig:
    base_url: str  # OpenAI-compatible root such as http://127.0.0.1:8000/v1; requests go to {base_url}/chat/completions
    model: str  # the model name the endpoint serves; part of the metric hash
    rubric: Rubric = DEFAULT_RUBRIC  # what the judge is asked; part of the metric hash
    api_key_env: str | None = None  # env variable holding the API key, read when scoring; never stored or hashed
    timeout_s: float = 60.0  # per phase of a request (connect, write, each read); past it: unscored "timeout"
    max_retries: int = 2  # more attempts after a connection error, 429 or 5xx; none after a timeout or a bad reply
    retry_backoff_s: float = 0.5  # wait before retry k (from 0) is retry_backoff_s * 2**k
    temperature: float = 0.0  # greedy, so a deterministic server gives the same grade twice
    max_tokens: int = 512  # cap on the reply; a reply cut short mid-JSON is unscored, not a zero
    pass_threshold: float = 0.5  # a normalised score at or above this is "correct"
    json_mode: bool = False  # send response_format {"type": "json_object"}; off by default as some servers reject it
    concurrency: int = 4  # requests in flight at once

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        if not self.model:
            raise ValueError("model must name the model the endpoint serves")
        if self.timeout_s <= 0 or self.max_retries < 0 or self.retry_backoff_s < 0 or self.concurrency < 1:
            raise ValueError("timeout_s and concurrency must be positive, max_retries and retry_backoff_s not negative")
        if not 0.0 <= self.pass_threshold <= 1.0 or self.temperature < 0 or self.max_tokens < 1:
            raise ValueError("pass_threshold must be in [0, 1], temperature >= 0, max_tokens >= 1")

    def spec(self) -> dict:
        """Everything that decides a grade, in a canonical form (floats as floats: 0 and 0.0 hash alike)."""
        return {
            "judge_version": JUDGE_VERSION,
            "rubric": {"name": self.rubric.name, "scale": self.rubric.scale, "template": self.rubric.template},
            "model": self.model,
            "temperature": float(self.temperature),
            "max_tokens": int(self.max_tokens),
            "pass_threshold": float(self.pass_threshold),
            "json_mode": bool(self.json_mode),
        }


def _sha256(obj: object) -> str:
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def judge_metric(config: LLMJudgeConfig) -> str:
    """``llm_judge@<12 hex>``: stable for the same grading spec, different for another rubric or model."""
    return f"llm_judge@{_sha256(config.spec())[:12]}"


class JudgeReply(BaseModel):
    """The reply's schema. ``score`` strict: a JSON number, not ``true`` or ``"0.8"``."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    score: float = Field(strict=True)
    verdict: str
    rationale: str


class Unscored(Exception):
    """Why an item got no grade; ``str(e)`` is the reason, ``reply`` the text when there was one."""

    def __init__(self, reason: str, reply: str | None = None) -> None:
        super().__init__(reason)
        self.reply = reply


def first_json_object(text: str) -> dict | None:
    """The first ``{...}`` in ``text`` that decodes to a JSON object, or None."""
    decoder = json.JSONDecoder()
    i = text.find("{")
    while i >= 0:
        try:
            obj, _ = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            return obj
        i = text.find("{", i + 1)
    return None


def parse_reply(text: str, scale: str) -> tuple[JudgeReply, float]:
    """(the validated reply, its score normalised to [0, 1]); raises ``Unscored("unparseable: ...")``."""
    obj = first_json_object(strip_think(text))
    if obj is None:
        raise Unscored("unparseable: no JSON object in the reply", text)
    try:
        reply = JudgeReply.model_validate(obj)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'reply'}: {err['msg']}" for err in e.errors())
        raise Unscored(f"unparseable: {problems}", text) from None
    s = reply.score
    if scale == "0-1":
        if not 0.0 <= s <= 1.0:
            raise Unscored(f"unparseable: score {s:g} is outside 0..1", text)
        return reply, s
    if s != int(s) or not 1 <= s <= 5:
        raise Unscored(f"unparseable: score {s:g} is not an integer in 1..5", text)
    return reply, (s - 1) / 4


@dataclass
class LLMJudge:
    """A judge over prediction records: ``.metric`` and ``.score_records(records) -> (rows, scorecard)``."""

    config: LLMJudgeConfig
    metric: str = field(init=False)

    def __post_init__(self) -> None:
        self.metric = judge_metric(self.config)

    def score_records(self, records: list[dict]) -> tuple[list[dict], dict]:
        """(item rows, scorecard) in the order of ``records`` (``{item_id, expected_answer, output, ...}``)."""
        cfg = self.config
        headers = {}
        if cfg.api_key_env and os.environ.get(cfg.api_key_env):
            headers["Authorization"] = f"Bearer {os.environ[cfg.api_key_env]}"
        with httpx.Client(timeout=httpx.Timeout(cfg.timeout_s), headers=headers) as client:
            if len(records) <= 1 or cfg.concurrency == 1:
                rows = [self._score_one(client, r) for r in records]
            else:
                with ThreadPoolExecutor(max_workers=min(cfg.concurrency, len(records))) as pool:
                    rows = list(pool.map(lambda r: self._score_one(client, r), records))
        meta = [{"section": r.get("section", "unknown"), "category": r.get("category", "unknown"),
                 "difficulty": r.get("difficulty", "unknown")} for r in records]
        card = scorecard([{"outcome": row["outcome"], "reason": row["detail"].get("reason")} for row in rows], meta,
                         metric=self.metric)
        scores = [row["score"] for row in rows if row["score"] is not None]
        card["judge"] = dict(sorted({
            **{k: v for k, v in cfg.spec().items() if k != "rubric"},
            "metric": self.metric,
            "rubric": cfg.rubric.name,
            "rubric_scale": cfg.rubric.scale,
            "rubric_sha256": hashlib.sha256(cfg.rubric.template.encode("utf-8")).hexdigest(),
            "base_url": cfg.base_url,
            "mean_score": round(sum(scores) / len(scores), 6) if scores else None,  # of the normalised scores
        }.items()))  # sorted like the rest of the scorecard
        card["trace_structure"] = trace_structure_summary(score_traces([r["output"] for r in records]))
        return rows, dict(sorted(card.items()))

    def _score_one(self, client: httpx.Client, record: Mapping) -> dict:
        cfg = self.config
        messages = [{"role": "user", "content": cfg.rubric.render(record)}]
        body: dict = {"model": cfg.model, "messages": messages, "temperature": cfg.temperature,
                      "max_tokens": cfg.max_tokens}
        if cfg.json_mode:
            body["response_format"] = {"type": "json_object"}
        detail: dict = {"model": cfg.model, "rubric": cfg.rubric.name, "prompt_sha256": _sha256(messages)}
        outcome, score = "unscored", None
        try:
            text, detail["attempts"] = self._complete(client, body)
            reply, score = parse_reply(text, cfg.rubric.scale)
            score = round(score, 6)
            outcome = "correct" if score >= cfg.pass_threshold else "wrong"
            detail.update(raw_score=reply.score, verdict=reply.verdict, rationale=reply.rationale)
        except Unscored as e:
            detail["reason"] = str(e)
            if e.reply is not None:
                detail["reply"] = e.reply[:_REPLY_KEPT]
        answer = score_item(record["output"], record["expected_answer"])
        return {
            "item_id": record["item_id"],
            "outcome": outcome,
            "extracted": answer.extracted,
            "extractor": answer.extractor,
            "strict_match": answer.strict_match,
            "flexible_match": answer.flexible_match,
            "section": record.get("section", "unknown"),
            "category": record.get("category", "unknown"),
            "score": score,
            "detail": detail,
        }

    def _complete(self, client: httpx.Client, body: dict) -> tuple[str, int]:
        """(the reply's text, attempts made); raises ``Unscored`` for every way a reply can fail to arrive."""
        cfg = self.config
        url = cfg.base_url.rstrip("/") + "/chat/completions"
        for attempt in range(cfg.max_retries + 1):
            if attempt:
                time.sleep(cfg.retry_backoff_s * 2 ** (attempt - 1))
            try:
                response = client.post(url, json=body)
            except httpx.TimeoutException as e:
                raise Unscored(f"timeout: no reply within {cfg.timeout_s:g} s ({type(e).__name__})") from None
            except httpx.TransportError as e:  # refused, reset, DNS: the server may come back
                last = f"unreachable: {type(e).__name__}: {e}"
                continue
            if response.status_code == 429 or response.status_code >= 500:  # overloaded or failing: may recover
                last = f"http_{response.status_code}: {response.text[:200]}"
                continue
            if response.status_code != 200:
                raise Unscored(f"http_{response.status_code}: {response.text[:200]}")
            try:
                content = response.json()["choices"][0]["message"]["content"]
            except (ValueError, KeyError, IndexError, TypeError):
                raise Unscored("unparseable: the response is not a chat completion", response.text) from None
            if not isinstance(content, str):
                raise Unscored("unparseable: the response's message content is not text", response.text)
            return content, attempt + 1
        raise Unscored(f"{last} (after {cfg.max_retries + 1} attempts)")
