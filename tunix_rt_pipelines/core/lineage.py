"""Reading what upstream assets recorded: their latest materialization's metadata."""

# No `from __future__ import annotations`: Dagster reads annotations at runtime.
from dagster import AssetExecutionContext, AssetKey, Failure


def latest_metadata(context: AssetExecutionContext, key: AssetKey) -> dict:
    """Plain values of the latest materialization of ``key``; a clear failure if there is none."""
    event = context.instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        raise Failure(f"{key.to_user_string()} has never been materialised; materialise it first")
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def partition_metadata(context: AssetExecutionContext, key: AssetKey, partition: str) -> dict:
    """Plain values of the latest materialization of one partition of ``key``."""
    from dagster import AssetRecordsFilter

    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1).records
    if not records:
        raise Failure(f"{key.to_user_string()} [{partition}] has never been materialised; materialise it first")
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}
