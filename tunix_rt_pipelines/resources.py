"""Every resource bound once to a home folder and database: shared by ``definitions`` and the
test graphs, so both run with the same bindings."""

from __future__ import annotations

from dagster import PipesSubprocessClient

from tunix_rt_pipelines.core.resources import ArtifactStoreResource, InboxResource, TraceStoreResource, WorkdirResource
from tunix_rt_pipelines.core.settings import Settings
from tunix_rt_pipelines.registry.assets import GatePolicyResource


def build_resources(settings: Settings) -> dict:
    return {
        "trace_store": TraceStoreResource(database_url=settings.database_url),
        "artifact_store": ArtifactStoreResource(root=str(settings.artifacts_dir)),
        "inbox": InboxResource(path=str(settings.inbox_dir)),
        "workdir": WorkdirResource(root=str(settings.home)),
        "pipes_subprocess_client": PipesSubprocessClient(),
        "gate_policy": GatePolicyResource(),
    }
