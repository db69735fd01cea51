"""One dataset asset per spec file in ``training/datasets/``; its data version is the snapshot digest."""

# No `from __future__ import annotations`: Dagster reads annotations at runtime.
from pathlib import Path

import yaml
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
)

from tunix_rt_pipelines.core.resources import ArtifactStoreResource, TraceStoreResource
from tunix_rt_pipelines.datasets.snapshot import DatasetSpec, build_snapshot, verify_snapshot


def load_spec(path: Path) -> DatasetSpec:
    try:
        return DatasetSpec.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except Exception as e:
        raise ValueError(f"{path}: invalid dataset spec: {e}") from e


def dataset_key(name: str) -> AssetKey:
    """The asset key of the dataset spec named ``name`` (asset key parts take no '.' or '-')."""
    return AssetKey(["dataset", name.replace(".", "_").replace("-", "_")])


def build_dataset_asset(spec: DatasetSpec) -> AssetsDefinition:
    key = dataset_key(spec.name)

    @asset(
        key=key,
        deps=["dev_reasoning", "synthetic_arithmetic", "ingested_trace_file"],
        group_name="datasets",
        kinds={"python", "parquet"},
        code_version="1",
        check_specs=[AssetCheckSpec("split_is_disjoint", asset=key, blocking=True,
                                    description="no trace is in both train and validation; files match the manifest")],
        description=f"Dataset snapshot '{spec.name}': {spec.model_dump_json(exclude_defaults=True)}",
    )
    def _dataset(
        context: AssetExecutionContext, trace_store: TraceStoreResource, artifact_store: ArtifactStoreResource
    ) -> MaterializeResult:
        artifacts = artifact_store.get_store()
        snap = build_snapshot(trace_store.get_store(), artifacts, spec, run_id=context.run_id)
        m = snap.manifest
        context.log.info(
            f"dataset {spec.name}: digest {snap.digest[:12]} "
            f"({'new' if snap.created else 'unchanged'}), {m['counts']['train']} train / {m['counts']['validation']} validation"
        )
        problems = verify_snapshot(m, artifacts)
        return MaterializeResult(
            metadata={
                "digest": snap.digest,
                "manifest_sha256": snap.manifest_sha256,
                "manifest_path": MetadataValue.path(str(artifacts.path_for(snap.manifest_sha256))),
                "train": m["counts"]["train"],
                "validation": m["counts"]["validation"],
                "template": f"{m['template']['key']} ({m['template']['hash'][:12]})",
                "trace_ids_digest": m["trace_ids_digest"],
                "by_category": MetadataValue.json(m["counts"]["by_category"]),
                "by_source": MetadataValue.json(m["counts"]["by_source"]),
                "lengths": MetadataValue.json(m["lengths"]),
                "prompt_chars_p95": m["lengths"]["prompt_chars"]["p95"],
                "completion_chars_p95": m["lengths"]["completion_chars"]["p95"],
                "new_snapshot": snap.created,
            },
            data_version=DataVersion(snap.digest),
            check_results=[AssetCheckResult(check_name="split_is_disjoint", passed=not problems,
                                            metadata={"problems": MetadataValue.json(problems)})],
        )

    return _dataset


def dataset_assets(spec_dir: Path) -> list[AssetsDefinition]:
    return [build_dataset_asset(load_spec(p)) for p in sorted(spec_dir.glob("*.yaml"))]
