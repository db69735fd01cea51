"""Automation: when a shipped eval set file changes, store the new version and re-score the champions.

The sensor hashes each eval set file on every tick (they are small) and compares it with the
``sha256`` its asset last recorded. A difference requests one run that materialises the eval
set asset and the given ``champion_evaluation`` assets; the run key is the new sha256, so a
changed file is acted on once, and changing it back is a new key only if that content was never
materialised under this key.
"""

# No `from __future__ import annotations`: Dagster reads annotations at runtime.
from pathlib import Path

from dagster import AssetKey, DefaultSensorStatus, RunRequest, SensorEvaluationContext, SkipReason, sensor

from tunix_rt_pipelines.core.artifacts import file_sha256
from tunix_rt_pipelines.evalsets.assets import evalset_key


def build_evalset_change_sensor(folder: Path, champion_evaluations: list[AssetKey], *,
                                minimum_interval_seconds: int = 60):  # noqa: ANN201
    keys = {p: evalset_key(p) for p in sorted(Path(folder).glob("*.jsonl"))}

    @sensor(
        name="evalset_change_sensor",
        asset_selection=[*keys.values(), *champion_evaluations],
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description="Re-materialises a changed eval set file and re-evaluates the champions on it.",
    )
    def _sensor(context: SensorEvaluationContext):
        requests = []
        for path, key in keys.items():
            event = context.instance.get_latest_materialization_event(key)
            stored = event.asset_materialization.metadata["sha256"].value if event else None
            current = file_sha256(path)
            if stored is None or stored == current:
                continue  # never materialised (the main job's business) or unchanged
            context.log.info(f"{path.name} changed: {stored[:12]} -> {current[:12]}")
            requests.append(RunRequest(run_key=f"{key.to_user_string()}:{current}",
                                       asset_selection=[key, *champion_evaluations],
                                       tags={"evalset_sha256": current}))
        return requests or SkipReason("no eval set file changed since its last materialisation")

    return _sensor
