"""Score stored predictions with a judge: no generation, so any judge can re-score any predictions."""

from __future__ import annotations

from tunix_rt_pipelines.evaluation.answers import METRIC, score_item
from tunix_rt_pipelines.evaluation.scorecard import scorecard
from tunix_rt_pipelines.evaluation.store import evaluation_id
from tunix_rt_pipelines.inference.predict import from_jsonl


def score_records(records: list[dict]) -> tuple[list[dict], dict]:
    """(item rows, scorecard) of prediction records ``{item_id, expected_answer, output, [section, ...]}``."""
    rows = []
    for r in records:
        s = score_item(r["output"], r["expected_answer"])
        rows.append({
            "item_id": r["item_id"],
            "outcome": s.outcome,
            "extracted": s.extracted,
            "extractor": s.extractor,
            "strict_match": s.strict_match,
            "flexible_match": s.flexible_match,
            "section": r.get("section", "unknown"),
            "category": r.get("category", "unknown"),
        })
    meta = [{"section": r.get("section", "unknown"), "category": r.get("category", "unknown"),
             "difficulty": r.get("difficulty", "unknown")} for r in records]
    return rows, scorecard([row["outcome"] for row in rows], meta)


def evaluate_blob(predictions: bytes, predictions_sha256: str, *, label: str, config_name: str,
                  dataset_digest: str, run_id: str | None = None) -> tuple[dict, list[dict]]:
    """(evaluation record, item rows) for a predictions blob written by the predictions asset."""
    records, run = from_jsonl(predictions)
    rows, card = score_records(records)
    record = {
        "id": evaluation_id(predictions_sha256, METRIC),
        "label": label,
        "judge": METRIC,
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
