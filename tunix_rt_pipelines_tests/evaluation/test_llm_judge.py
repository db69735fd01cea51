"""The LLM judge against real HTTP endpoints: our tiny model behind our OpenAI-compatible server, and
scripted endpoints that grade well, reply garbage, are slow, fail with 500 or refuse the connection."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace

import pytest

from tunix_rt_pipelines.evaluation.evaluate import score_records
from tunix_rt_pipelines.evaluation.judges import get_judge
from tunix_rt_pipelines.evaluation.llm_judge import DEFAULT_RUBRIC, LLMJudge, LLMJudgeConfig, Rubric, judge_metric
from tunix_rt_pipelines_tests.conftest import write_jsonl

RECORDS = [
    {"item_id": "a", "expected_answer": "12", "output": "3 x 4 = 12\n#### 12", "section": "core"},
    {"item_id": "b", "expected_answer": "5", "output": "2 + 2 = 4\n#### 4", "section": "core"},
    {"item_id": "c", "expected_answer": "7", "output": "3 + 4 = 7\n#### 7", "section": "ood", "prompt": "3 + 4?"},
]
ROW_KEYS = {"item_id", "outcome", "extracted", "extractor", "strict_match", "flexible_match", "section", "category",
            "score", "detail"}


def grade(message: str) -> str:
    """A well-behaved grader: fenced JSON, score 0.9 when the output's #### answer is the reference, else 0.2."""
    expected = re.search(r"Reference answer:\n(.*)\n", message).group(1)
    right = f"#### {expected}\n" in message
    return f'Here is my grade:\n```json\n{{"score": {0.9 if right else 0.2}, "verdict": "v", "rationale": "r"}}\n```'


def judge(url: str, model: str = "scripted", **options) -> LLMJudge:  # noqa: ANN003
    return LLMJudge(LLMJudgeConfig(base_url=url, model=model, timeout_s=30, retry_backoff_s=0.01, **options))


def reasons(rows: list[dict]) -> list[str | None]:
    return [row["detail"].get("reason") for row in rows]


def test_the_tiny_model_judges_garbage_as_unscored_never_zero(tiny_server) -> None:
    rows, card = judge(tiny_server.url, "tiny", max_tokens=12).score_records(RECORDS)
    assert card["n_items"] == card["n_scored"] + card["n_unscored"] == 3
    assert all(r["outcome"] == "unscored" and r["score"] is None for r in rows)
    assert all(reason.startswith("unparseable: ") for reason in reasons(rows))
    assert card["primary_score"] is None and card["judge"]["mean_score"] is None


def test_scoring_the_same_records_twice_is_identical(tiny_server) -> None:
    j = judge(tiny_server.url, "tiny", max_tokens=12)
    assert j.score_records(RECORDS) == j.score_records(RECORDS)


def test_well_formed_grades_pass_or_fail_by_threshold(scripted) -> None:
    rows, card = judge(scripted(grade).url).score_records(RECORDS)
    assert [(r["outcome"], r["score"]) for r in rows] == [("correct", 0.9), ("wrong", 0.2), ("correct", 0.9)]
    assert set(rows[0]) == ROW_KEYS and rows[0]["detail"]["verdict"] == "v" and rows[0]["extractor"] == "marker_hash"
    assert (card["n_correct"], card["n_wrong"], card["primary_score"], card["judge"]["mean_score"]) == (2, 1, 0.666667,
                                                                                                         0.666667)
    rows, _ = judge(scripted(grade).url, pass_threshold=0.95).score_records(RECORDS)
    assert [r["outcome"] for r in rows] == ["wrong"] * 3


def test_a_one_to_five_rubric_is_normalised_and_needs_integers(scripted) -> None:
    rubric = Rubric(name="five", template="{output}", scale="1-5")
    rows, _ = judge(scripted(lambda m: '{"score": 4, "verdict": "ok", "rationale": ""}').url,
                    rubric=rubric).score_records(RECORDS[:1])
    assert (rows[0]["outcome"], rows[0]["score"], rows[0]["detail"]["raw_score"]) == ("correct", 0.75, 4)
    rows, _ = judge(scripted(lambda m: '{"score": 3.5, "verdict": "ok", "rationale": ""}').url,
                    rubric=rubric).score_records(RECORDS[:1])
    assert reasons(rows) == ["unparseable: score 3.5 is not an integer in 1..5"]


@pytest.mark.parametrize("reply, reason", [
    ("I think it is fine.", "unparseable: no JSON object in the reply"),
    ('{"score": 1.5, "verdict": "x", "rationale": ""}', "unparseable: score 1.5 is outside 0..1"),
    ('{"score": "0.5", "verdict": "x", "rationale": ""}', "unparseable: score: Input should be a valid number"),
    ('{"verdict": "x", "rationale": ""}', "unparseable: score: Field required"),
    ('<think>{"score": 1, "verdict": "x", "rationale": ""}', "unparseable: no JSON object in the reply"),
])
def test_garbage_replies_are_unparseable(scripted, reply: str, reason: str) -> None:
    rows, card = judge(scripted(lambda m: reply).url).score_records(RECORDS[:2])
    assert reasons(rows) == [reason, reason] and rows[0]["detail"]["reply"] == reply
    assert (card["n_unscored"], card["unscored_reasons"], card["primary_score"]) == (2, {reason: 2}, None)


def test_a_slow_judge_is_unscored_with_a_timeout(scripted) -> None:
    server = scripted(grade, delay_s=2.0)
    rows, _ = LLMJudge(LLMJudgeConfig(base_url=server.url, model="scripted", timeout_s=0.3)).score_records(RECORDS[:1])
    assert reasons(rows)[0].startswith("timeout: ") and rows[0]["score"] is None
    assert len(server.backend.requests) == 1  # no retry after a timeout


def test_a_refused_connection_is_retried_then_unreachable(refused_url) -> None:
    rows, card = judge(refused_url, max_retries=1).score_records(RECORDS)
    assert all(r.startswith("unreachable: ConnectError") and r.endswith("(after 2 attempts)") for r in reasons(rows))
    assert card["n_unscored"] == 3 and card["primary_score"] is None


def test_http_500_is_retried_then_unscored(scripted) -> None:
    server = scripted(grade, status=500)
    rows, _ = judge(server.url, max_retries=2).score_records(RECORDS[:1])
    assert reasons(rows)[0].startswith("http_500: ") and len(server.backend.requests) == 3


def test_a_client_error_is_not_retried(scripted) -> None:
    server = scripted(grade, status=400)
    rows, _ = judge(server.url, max_retries=2).score_records(RECORDS[:1])
    assert reasons(rows)[0].startswith("http_400: ") and len(server.backend.requests) == 1


def test_the_metric_hash_changes_with_rubric_or_model_and_nothing_else() -> None:
    base = LLMJudgeConfig(base_url="http://a:1/v1", model="m")
    same = [replace(base, base_url="https://b/v1", timeout_s=3, max_retries=0, concurrency=1, api_key_env="K"),
            replace(base, temperature=0)]
    other = [replace(base, model="m2"), replace(base, rubric=replace(DEFAULT_RUBRIC, template="{output}?")),
             replace(base, rubric=replace(DEFAULT_RUBRIC, name="other")), replace(base, pass_threshold=0.7)]
    assert re.fullmatch(r"llm_judge@[0-9a-f]{12}", judge_metric(base))
    assert {judge_metric(c) for c in same} == {judge_metric(base)}
    assert len({judge_metric(c) for c in [base, *other]}) == 5


def test_the_prompt_and_model_are_recorded_and_the_api_key_is_sent_but_not_stored(scripted, monkeypatch) -> None:
    monkeypatch.setenv("JUDGE_KEY", "sk-secret")
    server = scripted(grade)
    rows, card = judge(server.url, api_key_env="JUDGE_KEY").score_records(RECORDS[2:])
    (request,) = server.backend.requests
    assert (request["model"], request["temperature"]) == ("scripted", 0)
    assert "3 + 4?" in request["messages"][0]["content"]
    assert server.backend.headers[0]["Authorization"] == "Bearer sk-secret"
    assert len(rows[0]["detail"]["prompt_sha256"]) == 64 and card["judge"]["base_url"] == server.url
    assert "sk-secret" not in json.dumps([rows, card])


def test_get_judge_picks_either_judge_by_name(scripted) -> None:
    assert get_judge("answer_correctness").score_records(RECORDS) == score_records(RECORDS)
    assert set(score_records(RECORDS)[0][0]) == ROW_KEYS
    j = get_judge("llm_judge", base_url=scripted(grade).url, model="scripted")
    assert j.metric.startswith("llm_judge@") and j.score_records(RECORDS)[1]["metric"] == j.metric
    with pytest.raises(ValueError, match="needs model"):
        get_judge("llm_judge", base_url="http://x/v1")


def test_a_rubric_file_is_yaml_or_plain_template(tmp_path) -> None:
    (tmp_path / "r.yaml").write_text("name: strict\nscale: 1-5\ntemplate: 'Grade {output} vs {expected_answer}'\n")
    (tmp_path / "plain.txt").write_text("Grade {output}")
    assert Rubric.from_file(tmp_path / "r.yaml") == Rubric("strict", "Grade {output} vs {expected_answer}", "1-5")
    assert Rubric.from_file(tmp_path / "plain.txt") == Rubric("plain", "Grade {output}")


@pytest.mark.parametrize("template, scale, error", [
    ("Grade the answer {expected_answer}", "0-1", "rubric 'bad': the template has no {output} placeholder"),
    ("Grade {output}", "0-10", "rubric 'bad': scale '0-10' is not one of"),
])
def test_a_rubric_that_cannot_grade_is_refused_by_name(template: str, scale: str, error: str) -> None:
    with pytest.raises(ValueError, match=re.escape(error)):
        Rubric("bad", template, scale)


def rescore(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunix_rt_pipelines.cli", "rescore", *args], capture_output=True,
                          text=True, timeout=300, check=False)


def test_rescore_with_the_llm_judge_prints_items_and_the_scorecard(tiny_server, tmp_path) -> None:
    path = write_jsonl(tmp_path / "preds.jsonl", RECORDS)
    result = rescore(str(path), "--judge", "llm_judge", "--judge-url", tiny_server.url, "--judge-model", "tiny",
                     "--timeout", "30", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout)
    assert [i["item_id"] for i in out["items"]] == ["a", "b", "c"]
    assert out["scorecard"]["n_unscored"] == 3 and out["scorecard"]["metric"].startswith("llm_judge@")


def test_rescore_names_the_missing_judge_option(tmp_path) -> None:
    path = write_jsonl(tmp_path / "preds.jsonl", RECORDS)
    result = rescore(str(path), "--judge", "llm_judge", "--judge-model", "tiny")
    assert result.returncode == 2 and "--judge llm_judge needs --judge-url" in result.stderr
    result = rescore(str(path), "--judge-url", "http://x/v1")
    assert result.returncode == 2 and "--judge-url: only for --judge llm_judge" in result.stderr
