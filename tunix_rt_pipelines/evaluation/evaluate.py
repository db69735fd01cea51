"""Score stored predictions with a judge: no generation, so any judge can re-score any predictions."""

from __future__ import annotations

from collections.abc import Sequence

from tunix_rt_pipelines.evaluation.answers import METRIC, ItemScore, score_item
from tunix_rt_pipelines.evaluation.parallel import map_slices
from tunix_rt_pipelines.evaluation.scorecard import scorecard
from tunix_rt_pipelines.evaluation.trace_structure import METRIC as TRACE_METRIC
from tunix_rt_pipelines.evaluation.trace_structure import TraceScore, score_trace
from tunix_rt_pipelines.evaluation.store import evaluation_id
from tunix_rt_pipelines.inference.predict import from_jsonl


def _score_both(records: Sequence[dict]) -> list[tuple[ItemScore, TraceScore]]:
    return [(score_item(r["output"], r["expected_answer"]), score_trace(r["output"])) for r in records]


def score_records(records: Sequence[dict], *, workers: int = 1) -> tuple[list[dict], dict]:
    """(item rows, scorecard) of prediction records ``{item_id, expected_answer, output, [section, ...]}``.

    ``workers`` > 1 scores slices in forked processes (see :mod:`.parallel`); same rows, same card."""
    scored = map_slices(_score_both, records, workers=workers)
    rows = []
    for r, (s, _) in zip(records, scored):
        rows.append({
            "item_id": r["item_id"],
            "outcome": s.outcome,
            "extracted": s.extracted,
            "extractor": s.extractor,
            "strict_match": s.strict_match,
            "flexible_match": s.flexible_match,
            "section": r.get("section", "unknown"),
            "category": r.get("category", "unknown"),
            "score": None,  # pass/fail judge: no graded score
            "detail": None,
        })
    meta = [{"section": r.get("section", "unknown"), "category": r.get("category", "unknown"),
             "difficulty": r.get("difficulty", "unknown")} for r in records]
    card = scorecard([row["outcome"] for row in rows], meta)
    card["trace_structure"] = trace_structure_summary([t for _, t in scored])
    card["lm_eval"] = lm_eval_summary(rows)
    return rows, card


def lm_eval_summary(rows: list[dict]) -> dict:
    """lm-eval-harness GSM8K ``exact_match`` under its strict-match and flexible-extract filters:
    the field's figures, over every item (lm-eval has no invalid/unscored distinction)."""
    n = len(rows)
    return {"n": n,
            "strict_match": round(sum(r["strict_match"] for r in rows) / n, 6) if n else None,
            "flexible_extract": round(sum(r["flexible_match"] for r in rows) / n, 6) if n else None}


def trace_structure_summary(scores: Sequence[TraceScore]) -> dict:
    """Means of trace_structure@v1 and its four checks over the outputs' scores (a secondary view of form)."""
    n = len(scores)
    checks = ("steps_present", "final_answer_stated", "answer_consistent_with_last_step", "no_repetition_loop")
    summary = {"metric": TRACE_METRIC, "n": n, "mean": round(sum(t.score for t in scores) / n, 6) if n else None}
    summary.update({c: round(sum(getattr(t, c) for t in scores) / n, 6) if n else None for c in checks})
    return summary


def evaluate_blob(predictions: bytes, predictions_sha256: str, *, label: str, config_name: str,
                  dataset_digest: str, run_id: str | None = None, judge=None) -> tuple[dict, list[dict]]:  # noqa: ANN001
    """(evaluation record, item rows) for a predictions blob written by the predictions asset.

    ``judge``: any object with ``.metric`` and ``.score_records`` (see ``judges.get_judge``);
    ``answer_correctness@v1`` when None. Its metric is the record's ``judge`` and part of its id."""
    records, run = from_jsonl(predictions)
    metric = METRIC if judge is None else judge.metric
    rows, card = score_records(records) if judge is None else judge.score_records(records)
    record = {
        "id": evaluation_id(predictions_sha256, metric),
        "label": label,
        "judge": metric,
        "predictions_sha256": predictions_sha256,
        "evalset_sha256": run["evalset_sha256"],
        "model_digest": run["model_digest"],
        "config_name": config_name,
        "config_hash": run["config_hash"],
        "dataset_digest": dataset_digest,
        "backend": run["backend"],
        "primary_score": card["primary_score"],
        "n_items": card["n_items"],
        "n_scored": card["n_scored"],
        "n_invalid": card["n_invalid"],
        "scorecard": card,
        "run_id": run_id,
    }
    return record, rows
