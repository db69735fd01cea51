"""Assembles the Dagster code location: assets, checks, jobs, sensors, resources. No logic here."""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job

from tunix_rt_pipelines.core.resources import ArtifactStoreResource, InboxResource, TraceStoreResource
from tunix_rt_pipelines.core.settings import REPO_ROOT, Settings
from tunix_rt_pipelines.datasets.assets import dataset_assets
from tunix_rt_pipelines.evalsets.assets import evalset_assets
from tunix_rt_pipelines.synthetic.assets import dev_reasoning
from tunix_rt_pipelines.traces.assets import inbox_sensor, ingest_job, ingested_trace_file

MAIN_JOB = "main"


def build_definitions(settings: Settings | None = None) -> Definitions:
    settings = settings or Settings.from_env()
    assets = [ingested_trace_file, dev_reasoning, *dataset_assets(REPO_ROOT / "training" / "datasets"),
              *evalset_assets(REPO_ROOT / "evalsets")]
    main_job = define_asset_job(
        MAIN_JOB,
        selection=AssetSelection.all() - AssetSelection.assets(ingested_trace_file),
        description="Everything that is not per inbox file: dev set, datasets, eval sets (and later stages).",
    )
    return Definitions(
        assets=assets,
        jobs=[ingest_job, main_job],
        sensors=[inbox_sensor],
        resources={
            "trace_store": TraceStoreResource(database_url=settings.database_url),
            "artifact_store": ArtifactStoreResource(root=str(settings.artifacts_dir)),
            "inbox": InboxResource(path=str(settings.inbox_dir)),
        },
    )


defs = build_definitions()
