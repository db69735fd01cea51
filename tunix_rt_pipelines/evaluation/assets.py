"""Evaluations of stored predictions and the leaderboard over every evaluation: the UI's leaderboard."""

# No `from __future__ import annotations`: Dagster reads annotations at runtime.
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
)

from tunix_rt_pipelines.core.lineage import latest_metadata
from tunix_rt_pipelines.core.resources import ArtifactStoreResource, TraceStoreResource
from tunix_rt_pipelines.evaluation.compare import compare_many
from tunix_rt_pipelines.evaluation.evaluate import evaluate_blob
from tunix_rt_pipelines.evaluation.store import leaderboard as leaderboard_rows
from tunix_rt_pipelines.evaluation.store import item_outcomes, save_evaluation
from tunix_rt_pipelines.training.assets import base_model_key, checkpoint_key
from tunix_rt_pipelines.training.config import load_config

WHICH = ("base", "trained")


def evaluation_key(config_name: str, which: str) -> AssetKey:
    return AssetKey(["evaluation", config_name, which])


def build_evaluation_assets(config_path: Path) -> list[AssetsDefinition]:
    cfg = load_config(config_path)

    def build(which: str) -> AssetsDefinition:
        predictions_key = AssetKey(["predictions", cfg.name, which])
        key = evaluation_key(cfg.name, which)

        @asset(
            key=key,
            deps=[predictions_key],
            group_name="evaluation",
            kinds={"python", "sql"},
            code_version="1",
            description=f"answer_correctness@v1 over predictions/{cfg.name}/{which}, stored with per-item scores.",
        )
        def _evaluation(
            context: AssetExecutionContext, trace_store: TraceStoreResource, artifact_store: ArtifactStoreResource
        ) -> MaterializeResult:
            md = latest_metadata(context, predictions_key)
            sha = md["predictions_sha256"]
            blob = artifact_store.get_store().get_bytes(sha)
            # The base model's tokenizer and the checkpoint's weights both come from the config's dataset.
            model_asset = checkpoint_key(cfg) if which == "trained" else base_model_key(cfg)
            dataset_digest = latest_metadata(context, model_asset)["dataset_digest"]
            record, rows = evaluate_blob(blob, sha, label=f"{cfg.name}/{which}", config_name=cfg.name,
                                         dataset_digest=dataset_digest, run_id=context.run_id)
            created = save_evaluation(trace_store.get_store().engine, record, rows)
            card = record["scorecard"]
            context.log.info(f"{record['label']}: primary score {card['primary_score']} "
                             f"({card['n_scored']} scored, {card['n_invalid']} invalid)"
                             + ("" if created else " — already stored, unchanged"))
            by_section = {name: part["mean"] for name, part in card["by_section"].items()}
            return MaterializeResult(
                metadata={
                    "primary_score": card["primary_score"] if card["primary_score"] is not None else float("nan"),
                    "evaluation_id": record["id"],
                    "judge": record["judge"],
                    "n_items": card["n_items"],
                    "n_scored": card["n_scored"],
                    "n_invalid": card["n_invalid"],
                    **{f"score_{name}": value for name, value in by_section.items()},
                    "trace_structure": card["trace_structure"]["mean"] if card["trace_structure"]["mean"] is not None
                    else float("nan"),
                    "lm_eval_strict": card["lm_eval"]["strict_match"] if card["lm_eval"]["strict_match"] is not None
                    else float("nan"),
                    "lm_eval_flexible": card["lm_eval"]["flexible_extract"]
                    if card["lm_eval"]["flexible_extract"] is not None else float("nan"),
                    "scorecard": MetadataValue.json(card),
                    "predictions_sha256": sha,
                    "model_digest": record["model_digest"],
                },
                data_version=DataVersion(record["id"]),
            )

        return _evaluation

    return [build(which) for which in WHICH]


FLOAT_COLUMNS = ("primary_score", "core", "trace_sensitive", "edge_case", "lm_eval_strict", "lm_eval_flexible")


def _lm_eval_columns(card: dict) -> dict:
    """lm-eval strict/flexible of a stored scorecard; NaN for evaluations stored before they were recorded."""
    lm = card.get("lm_eval") or {}
    return {"lm_eval_strict": lm.get("strict_match") if lm.get("strict_match") is not None else float("nan"),
            "lm_eval_flexible": lm.get("flexible_extract") if lm.get("flexible_extract") is not None else float("nan")}


def build_leaderboard_asset(evaluation_keys: list[AssetKey]) -> AssetsDefinition:
    @asset(
        key="leaderboard",
        deps=evaluation_keys,
        group_name="evaluation",
        kinds={"python", "sql"},
        code_version="1",
        description="Every stored evaluation ranked by primary score (answer_correctness), with its provenance.",
    )
    def _leaderboard(context: AssetExecutionContext, trace_store: TraceStoreResource) -> MaterializeResult:
        rows = leaderboard_rows(trace_store.get_store().engine, limit=200)
        columns = ["rank", "label", "primary_score", "core", "trace_sensitive", "edge_case", "lm_eval_strict",
                   "lm_eval_flexible", "backend", "config", "model", "dataset", "created_at"]
        records = []
        for rank, r in enumerate(rows, start=1):
            sections = r["scorecard"].get("by_section", {})
            records.append(TableRecord({
                "rank": rank, "label": r["label"],
                "primary_score": r["primary_score"] if r["primary_score"] is not None else float("nan"),
                **{s: sections.get(s, {}).get("mean", float("nan")) or 0.0 for s in ("core", "trace_sensitive", "edge_case")},
                **_lm_eval_columns(r["scorecard"]),
                "backend": r["backend"], "config": r["config_name"], "model": r["model_digest"][:12],
                "dataset": r["dataset_digest"][:12], "created_at": r["created_at"].isoformat(timespec="seconds"),
            }))
        best = rows[0] if rows else None
        return MaterializeResult(metadata={
            "evaluations": len(rows),
            "best_primary_score": best["primary_score"] if best and best["primary_score"] is not None else float("nan"),
            "best": best["label"] if best else "",
            "leaderboard": MetadataValue.table(
                records=records,
                schema=TableSchema(columns=[TableColumn(c, "float" if c in FLOAT_COLUMNS else "string") for c in columns]),
            ),
        })

    return _leaderboard


def build_comparison_asset(config_path: Path) -> AssetsDefinition:
    cfg = load_config(config_path)
    base_key, trained_key = evaluation_key(cfg.name, "base"), evaluation_key(cfg.name, "trained")

    @asset(
        key=AssetKey(["comparison", cfg.name]),
        deps=[base_key, trained_key],
        group_name="evaluation",
        kinds={"python"},
        code_version="1",
        description=f"{cfg.name}: the trained model against its base, item by item (flips, exact McNemar).",
    )
    def _comparison(context: AssetExecutionContext, trace_store: TraceStoreResource) -> MaterializeResult:
        engine = trace_store.get_store().engine
        refs = [latest_metadata(context, key)["evaluation_id"] for key in (base_key, trained_key)]
        (r,) = compare_many([(f"{cfg.name}/base", item_outcomes(engine, refs[0])),
                             (f"{cfg.name}/trained", item_outcomes(engine, refs[1]))])
        checkpoint_md = latest_metadata(context, checkpoint_key(cfg))
        return MaterializeResult(metadata={
            "n_paired": r["n_paired"],
            "delta": r["delta"] if r["delta"] is not None else float("nan"),
            "right_to_wrong": len(r["right_to_wrong"]),
            "wrong_to_right": len(r["wrong_to_right"]),
            "mcnemar_p": r["mcnemar_p"],
            "by_section": MetadataValue.table(
                records=[TableRecord({"section": name, "n": s["n"], "base_correct": s["a_correct"],
                                      "trained_correct": s["b_correct"], "delta": s["delta"]})
                         for name, s in r["by_section"].items()],
                schema=TableSchema(columns=[TableColumn("section"), TableColumn("n", "int"),
                                            TableColumn("base_correct", "int"), TableColumn("trained_correct", "int"),
                                            TableColumn("delta", "float")]),
            ),
            "flipped_items": MetadataValue.json({"right_to_wrong": r["right_to_wrong"],
                                                 "wrong_to_right": r["wrong_to_right"]}),
            "loss_curve": checkpoint_md["loss_curve"],
        })

    return _comparison
