"""The nightly sweep schedule and the eval-set sensor, in Dagster's schedule and sensor test contexts."""

import shutil

from dagster import (
    AssetKey,
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    materialize,
)

from tunix_rt_pipelines.core.resources import ArtifactStoreResource
from tunix_rt_pipelines.definitions import EVALSET, defs
from tunix_rt_pipelines.evalsets.assets import build_evalset_asset
from tunix_rt_pipelines.evalsets.sensors import build_evalset_change_sensor

CHAMPION_EVAL = AssetKey(["champion_evaluation", "smoke_tiny"])


def test_the_nightly_schedule_runs_the_sweep_job_at_two_utc():
    schedule = defs.get_schedule_def("nightly_smoke_sweep")
    assert schedule.cron_schedule == "0 2 * * *" and schedule.job_name == "sweep_smoke_sweep"
    with DagsterInstance.ephemeral() as instance:
        (request,) = schedule.evaluate_tick(build_schedule_context(instance=instance)).run_requests
    assert request.run_config["ops"]["sweep__smoke_sweep"]["config"]["mode"] == "run"


def test_the_sweep_job_carries_the_compute_tag_the_queue_limits_on():
    assert defs.resolve_job_def("sweep_smoke_sweep").tags["compute"] == "cpu"


def evalset_sensor_after_materialising(tmp_path, instance):
    folder = tmp_path / "evalsets"
    folder.mkdir()
    shutil.copy(EVALSET, folder / EVALSET.name)
    asset = build_evalset_asset(folder / EVALSET.name)
    assert materialize([asset], instance=instance,
                       resources={"artifact_store": ArtifactStoreResource(root=str(tmp_path / "a"))}).success
    return folder, build_evalset_change_sensor(folder, [CHAMPION_EVAL])


def test_an_unchanged_eval_set_requests_nothing(tmp_path):
    with DagsterInstance.ephemeral() as instance:
        _, sensor = evalset_sensor_after_materialising(tmp_path, instance)
        result = sensor(build_sensor_context(instance=instance))
    assert isinstance(result, SkipReason)


def test_a_changed_eval_set_re_evaluates_the_champion_once_per_content(tmp_path):
    with DagsterInstance.ephemeral() as instance:
        folder, sensor = evalset_sensor_after_materialising(tmp_path, instance)
        lines = (folder / EVALSET.name).read_text().splitlines(keepends=True)
        (folder / EVALSET.name).write_text("".join(lines[:-1]))  # one item dropped
        (request,) = sensor(build_sensor_context(instance=instance))
    assert isinstance(request, RunRequest)
    assert set(request.asset_selection) == {AssetKey(["evalset", "eval_v1"]), CHAMPION_EVAL}
    assert request.run_key.endswith(request.tags["evalset_sha256"])
