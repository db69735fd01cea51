"""Predictions on the shipped eval set, for the base model and for the trained checkpoint of a config."""

# No `from __future__ import annotations`: Dagster reads annotations at runtime.
import time
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Config,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
)

from tunix_rt_pipelines.core.artifacts import get_tree
from tunix_rt_pipelines.core.lineage import latest_metadata
from tunix_rt_pipelines.core.resources import ArtifactStoreResource, WorkdirResource
from tunix_rt_pipelines.evalsets.assets import evalset_key
from tunix_rt_pipelines.evalsets.validate import load_evalset
from tunix_rt_pipelines.inference.predict import SamplingSettings, predict, summarize, to_jsonl
from tunix_rt_pipelines.training.assets import base_model_key, checkpoint_key, dataset_manifest
from tunix_rt_pipelines.training.config import load_config


class PredictionsConfig(Config):
    max_new_tokens: int = 160  # generation budget per item
    batch_size: int = 16  # prompts per generate call
    temperature: float = 0.0  # 0 = greedy (deterministic)
    top_p: float = 1.0  # nucleus threshold when sampling
    seed: int = 0  # sampling seed


def build_prediction_assets(config_path: Path, evalset_path: Path) -> list[AssetsDefinition]:
    cfg = load_config(config_path)
    evalset = evalset_key(evalset_path)

    def build(which: str, model_key: AssetKey, digest_field: str) -> AssetsDefinition:
        key = AssetKey(["predictions", cfg.name, which])

        @asset(
            key=key,
            deps=[model_key, evalset],
            group_name="inference",
            kinds={"pytorch" if cfg.backend == "torch" else "jax"},
            code_version="1",
            description=f"Greedy predictions of the {which} model of {config_path.name} on {evalset_path.name}.",
        )
        def _predictions(
            context: AssetExecutionContext, config: PredictionsConfig, artifact_store: ArtifactStoreResource,
            workdir: WorkdirResource,
        ) -> MaterializeResult:
            artifacts = artifact_store.get_store()
            model_md = latest_metadata(context, model_key)
            digest = model_md[digest_field]
            model_dir = get_tree(artifacts, digest, workdir.models / digest)
            evalset_sha = latest_metadata(context, evalset)["sha256"]
            items = load_evalset(artifacts.path_for(evalset_sha))
            # Prompts are rendered with the template the model was trained on.
            template = dataset_manifest(context, cfg, artifacts)["template"]["key"]
            sampling = SamplingSettings(max_new_tokens=config.max_new_tokens, batch_size=config.batch_size,
                                        temperature=config.temperature, top_p=config.top_p, seed=config.seed)
            t0 = time.perf_counter()
            records, run = predict(items, model_dir, backend=cfg.backend, template_key=template, sampling=sampling,
                                   device=cfg.device, dtype=cfg.precision)
            wall = time.perf_counter() - t0
            run.update({"model_digest": digest, "evalset_sha256": evalset_sha,
                        "config_hash": cfg.config_hash})
            sha = artifacts.put_bytes(to_jsonl(records, run))
            summary = summarize(records)
            n_tokens = sum(r["tokens_generated"] for r in records)
            context.log.info(f"{key.to_user_string()}: {summary['marked_answer_accuracy']:.0%} marked answers right "
                             f"({n_tokens:,} tokens in {wall:.1f}s)")
            return MaterializeResult(
                metadata={
                    **summary,
                    "predictions_sha256": sha,
                    "predictions_path": MetadataValue.path(str(artifacts.path_for(sha))),
                    "model_digest": digest,
                    "backend": cfg.backend,
                    "dtype": cfg.precision,
                    "sampling": MetadataValue.json(run["sampling"]),
                    "template": f"{run['template']['key']} ({run['template']['hash'][:12]})",
                    "generation_tokens_per_s": round(n_tokens / wall, 1) if wall else 0.0,
                    "wall_s": round(wall, 2),
                    "sample": MetadataValue.table(
                        records=[
                            TableRecord({"item_id": r["item_id"], "expected": r["expected_answer"],
                                         "got": r["marked_answer"] or "", "output": r["output"][:160]})
                            for r in records[:8]
                        ],
                        schema=TableSchema(columns=[TableColumn("item_id"), TableColumn("expected"),
                                                    TableColumn("got"), TableColumn("output")]),
                    ),
                },
                data_version=DataVersion(sha),
            )

        return _predictions

    return [build("base", base_model_key(cfg), "model_digest"), build("trained", checkpoint_key(cfg), "checkpoint_digest")]
