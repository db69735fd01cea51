"""The ingest asset and the inbox sensor, run through Dagster on a real (temporary) instance."""


import json
import os
import shutil
import time

from dagster import AssetKey, DagsterInstance, DagsterRunStatus, build_sensor_context, instance_for_test, materialize

from tunix_rt_pipelines.core.artifacts import file_sha256
from tunix_rt_pipelines.core.settings import REPO_ROOT, Settings
from tunix_rt_pipelines.definitions import build_definitions
from tunix_rt_pipelines.traces.assets import inbox_files, inbox_sensor, ingest_job
from tunix_rt_pipelines_tests.conftest import trace_dict, write_jsonl


def _defs(tmp_path, url):
    settings = Settings(home=tmp_path / "home", database_url=url)
    settings.ensure_dirs()
    return settings, build_definitions(settings)


def _ingest(defs, instance: DagsterInstance, key: str):
    instance.add_dynamic_partitions(inbox_files.name, [key])
    result = defs.resolve_job_def(ingest_job.name).execute_in_process(instance=instance, partition_key=key)
    (event,) = result.get_asset_materialization_events()
    return result, {k: v.value for k, v in event.materialization.metadata.items()}


def test_ingest_asset_reports_counts_that_add_up(tmp_path, store_url):
    settings, defs = _defs(tmp_path, store_url)
    write_jsonl(settings.inbox_dir / "a.jsonl", [trace_dict(1), trace_dict(2), "{bad", trace_dict(1)])
    with instance_for_test() as instance:
        result, md = _ingest(defs, instance, "a.jsonl")
        checks = result.get_asset_check_evaluations()
    assert (md["read"], md["accepted"], md["duplicate"], md["rejected"]) == (4, 2, 1, 1)
    assert [c.passed for c in checks] == [True]
    assert "invalid_json" in md["top_reject_reasons"]


def test_reingesting_a_file_stores_nothing_new(tmp_path, sqlite_url):
    settings, defs = _defs(tmp_path, sqlite_url)
    write_jsonl(settings.inbox_dir / "a.jsonl", [trace_dict(i) for i in range(5)])
    with instance_for_test() as instance:
        _, first = _ingest(defs, instance, "a.jsonl")
        _, second = _ingest(defs, instance, "a.jsonl")
    assert (first["accepted"], second["accepted"], second["duplicate"]) == (5, 0, 5)
    assert first["file_sha256"] == second["file_sha256"]


def _settled(path):
    t = time.time() - 60
    os.utime(path, (t, t))
    return path


def test_sensor_adds_one_partition_per_new_file(tmp_path, sqlite_url):
    settings, defs = _defs(tmp_path, sqlite_url)
    _settled(write_jsonl(settings.inbox_dir / "a.jsonl", [trace_dict(1)]))
    write_jsonl(settings.inbox_dir / ".incoming-x", [trace_dict(2)])  # a copy in progress: not ready
    with instance_for_test() as instance:
        ctx = build_sensor_context(instance=instance, resources=defs.resources)
        result = inbox_sensor(ctx)
        assert [r.partition_key for r in result.run_requests] == ["a.jsonl"]
        assert result.dynamic_partitions_requests[0].partition_keys == ["a.jsonl"]
        instance.add_dynamic_partitions(inbox_files.name, ["a.jsonl"])
        again = inbox_sensor(build_sensor_context(instance=instance, resources=defs.resources, cursor=result.cursor))
    assert again.run_requests == []


def test_sensor_leaves_alone_content_already_ingested_and_requests_it_again_once_overwritten(tmp_path, sqlite_url):
    settings, defs = _defs(tmp_path, sqlite_url)
    path = _settled(write_jsonl(settings.inbox_dir / "a.jsonl", [trace_dict(1)]))
    with instance_for_test() as instance:
        _ingest(defs, instance, "a.jsonl")  # as the CLI does: partition first, then its run
        first = inbox_sensor(build_sensor_context(instance=instance, resources=defs.resources))
        _settled(write_jsonl(path, [trace_dict(1), trace_dict(2)]))
        second = inbox_sensor(build_sensor_context(instance=instance, resources=defs.resources, cursor=first.cursor))
    assert first.run_requests == []
    assert [r.run_key for r in second.run_requests] == [f"a.jsonl:{file_sha256(path)}"]
    assert second.dynamic_partitions_requests == []  # the partition exists: a new batch of it


def test_sensor_leaves_a_file_alone_while_an_ingest_run_of_its_partition_is_in_progress(tmp_path, sqlite_url):
    settings, defs = _defs(tmp_path, sqlite_url)
    _settled(write_jsonl(settings.inbox_dir / "a.jsonl", [trace_dict(1)]))
    with instance_for_test() as instance:
        instance.create_run_for_job(defs.resolve_job_def(ingest_job.name), status=DagsterRunStatus.STARTED,
                                    tags={"dagster/partition": "a.jsonl"})
        result = inbox_sensor(build_sensor_context(instance=instance, resources=defs.resources))
    assert result.run_requests == [] and json.loads(result.cursor) == {}


def test_assets_materialise_on_the_shared_postgres_deployment(tmp_path, monkeypatch, pg_dagster_env, pg_url):
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")  # the shipped shared-deployment file
    monkeypatch.setenv("TUNIX_RT_COMPUTE_LOGS_DIR", str(tmp_path / "logs"))
    settings, defs = _defs(tmp_path, pg_url)
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        # The data half of the main job (training is exercised in tests/training).
        result = materialize(
            list(defs.assets), instance=instance, resources=defs.resources,
            selection=[AssetKey("dev_reasoning"), AssetKey(["dataset", "dev_reasoning_sft"]), AssetKey(["evalset", "eval_v1"])],
            run_config={"ops": {"dev_reasoning": {"config": {"size": 60, "seed": 1}}}},
        )
        assert result.success
        keys = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
        stored = instance.get_latest_materialization_event(AssetKey(["dataset", "dev_reasoning_sft"]))
    assert {"dev_reasoning", "dataset/dev_reasoning_sft", "evalset/eval_v1"} <= keys
    assert stored is not None and stored.run_id == result.run_id
    assert len(stored.asset_materialization.metadata["digest"].value) == 64
