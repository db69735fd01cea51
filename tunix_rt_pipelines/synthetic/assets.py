"""The dev set as an asset: generated, written to the artefact store, stored like any ingest."""
# No `from __future__ import annotations`: Dagster reads Config annotations at runtime.


from collections import Counter

from dagster import AssetExecutionContext, Config, DataVersion, MaterializeResult, MetadataValue, asset

from tunix_rt_pipelines.core.resources import ArtifactStoreResource, TraceStoreResource
from tunix_rt_pipelines.synthetic.dev_set import DevSetSpec, build_dev_set
from tunix_rt_pipelines.traces.ingest import ingest_traces


class DevReasoningConfig(Config):
    size: int = 550  # total traces (70% reasoning / 20% game / 10% edge)
    seed: int = 42  # same seed, same traces


@asset(
    group_name="traces",
    kinds={"python", "sql"},
    code_version="1",
    description="The seeds' dev set: 550 generated traces, 70% reasoning / 20% High Card Duel / 10% edge cases.",
)
def dev_reasoning(
    context: AssetExecutionContext,
    config: DevReasoningConfig,
    trace_store: TraceStoreResource,
    artifact_store: ArtifactStoreResource,
) -> MaterializeResult:
    spec = DevSetSpec(size=config.size, seed=config.seed)
    traces = build_dev_set(spec)
    jsonl = "".join(t.model_dump_json() + "\n" for t in traces).encode()
    sha = artifact_store.get_store().put_bytes(jsonl)
    report = ingest_traces(
        trace_store.get_store(), traces, name=f"generator:dev_reasoning:seed{spec.seed}", content_sha256=sha,
        run_id=context.run_id,
    )
    context.log.info(f"dev_reasoning: {report.accepted} new, {report.duplicate} already stored")
    categories = Counter(t.metadata.category for t in traces)
    return MaterializeResult(
        metadata={
            "traces": len(traces),
            "accepted": report.accepted,
            "duplicate": report.duplicate,
            "composition": MetadataValue.json(spec.counts()),
            "by_category": MetadataValue.json(dict(categories)),
            "jsonl_sha256": sha,
            "seed": spec.seed,
        },
        data_version=DataVersion(sha),
    )
