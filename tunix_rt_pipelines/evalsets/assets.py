"""One asset per shipped eval set file; its data version is the file's sha256."""

# No `from __future__ import annotations`: Dagster reads annotations at runtime.
from pathlib import Path

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, DataVersion, Failure, MaterializeResult, MetadataValue, asset

from tunix_rt_pipelines.core.resources import ArtifactStoreResource
from tunix_rt_pipelines.evalsets.validate import validate_evalset


def evalset_key(path: Path) -> AssetKey:
    """The asset key of the eval set file ``path``."""
    return AssetKey(["evalset", path.stem.replace("-", "_").replace(".", "_")])


def build_evalset_asset(path: Path) -> AssetsDefinition:
    @asset(
        key=evalset_key(path),
        group_name="evalsets",
        kinds={"python", "json"},
        code_version="1",
        description=f"Eval set {path.name}: validated and stored content-addressed.",
    )
    def _evalset(context: AssetExecutionContext, artifact_store: ArtifactStoreResource) -> MaterializeResult:
        report = validate_evalset(path)
        if not report.ok:
            raise Failure(
                f"eval set {path.name} has {len(report.errors)} error(s)",
                metadata={"errors": MetadataValue.md("\n".join(f"- {e}" for e in report.errors[:50]))},
            )
        for w in report.warnings:
            context.log.warning(w)
        sha = artifact_store.get_store().put_file(path)
        stats = report.stats()
        return MaterializeResult(
            metadata={
                "items": stats["items"],
                "sha256": sha,
                "sections": MetadataValue.json(stats["sections"]),
                "categories": MetadataValue.json(stats["categories"]),
                "difficulties": MetadataValue.json(stats["difficulties"]),
                "warnings": MetadataValue.json(report.warnings),
            },
            data_version=DataVersion(sha),
        )

    return _evalset


def evalset_assets(folder: Path) -> list[AssetsDefinition]:
    return [build_evalset_asset(p) for p in sorted(folder.glob("*.jsonl"))]
