"""Loss curves of the models behind compared evaluations, found through Dagster's event log.

An evaluation knows the digest of the model it scored. The training run that produced a
checkpoint recorded that digest and its loss history in the checkpoint asset's
materialization, so the history of a trained model is the latest ``checkpoint/*``
materialization whose ``checkpoint_digest`` matches. Base models were not trained here and
have no curve; they are left out of the plot, not drawn empty.
"""

from __future__ import annotations

from dagster import DagsterInstance


def histories_by_checkpoint(instance: DagsterInstance, digests: set[str], *, per_asset: int = 200) -> dict[str, list]:
    """checkpoint digest -> loss history, for the digests in ``digests`` that a training run produced."""
    found: dict[str, list] = {}
    for key in instance.get_asset_keys():
        if key.path[0] != "checkpoint":
            continue
        records = instance.fetch_materializations(key, limit=per_asset).records
        for record in records:  # newest first
            md = record.asset_materialization.metadata
            digest = md["checkpoint_digest"].value if "checkpoint_digest" in md else None
            if digest in digests and digest not in found and "history" in md:
                found[digest] = md["history"].value
    return found
