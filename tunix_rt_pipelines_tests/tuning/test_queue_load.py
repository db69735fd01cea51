"""Load on the shared deployment's shape: three sweeps queued at once on a PostgreSQL instance.

A fresh PostgreSQL database holds both Dagster's storage (dagster-postgres) and our tables. The
instance uses the repository's queue policy (QueuedRunCoordinator, at most one ``compute=gpu``
run at a time); ``dagster job launch`` queues three sweep runs tagged ``compute=gpu`` and the real
``dagster-daemon`` dequeues and launches them. All must succeed, never two at once, with every
run's event log complete and every trial recorded.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from tunix_rt_pipelines.core.settings import REPO_ROOT
from tunix_rt_pipelines_tests.conftest import PG_ENV

HERE = Path(__file__).parent
BASE = {"name": "load_base", "dataset": "dev_reasoning_sft", "backend": "torch", "seq_len": 256, "batch_size": 4,
        "steps": 10, "checkpoint_every": 10, "log_every": 5, "eval_every": 5, "eval_batches": 1,
        "model": {"family": "qwen3", "source": "build:tiny", "hidden_size": 32, "num_layers": 1, "num_heads": 2,
                  "num_kv_heads": 1, "head_dim": 16, "intermediate_size": 64, "vocab_size": 400}}
SWEEPS = ("load_a", "load_b", "load_c")


def instance_yaml(url: sa.URL) -> str:
    return yaml.safe_dump({
        "storage": {"postgres": {"postgres_db": {
            "hostname": url.host, "port": url.port or 5432, "username": url.username, "password": url.password or "",
            "db_name": url.database, "scheme": "postgresql+psycopg2"}}},
        "run_coordinator": {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator",
                            "config": {"max_concurrent_runs": 4, "dequeue_interval_seconds": 1,
                                       "tag_concurrency_limits": [{"key": "compute", "value": "gpu", "limit": 1}]}},
        "telemetry": {"enabled": False},
    })


@pytest.fixture
def pg_database():
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set: no PostgreSQL server for this test (CI sets it)")
    url = sa.make_url(base).set(drivername="postgresql+psycopg2")
    name = f"load_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    yield url.set(database=name)
    from tunix_rt_pipelines.core.db import dispose_engines
    dispose_engines()
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


def test_three_queued_sweeps_run_one_gpu_run_at_a_time_and_lose_nothing(pg_database, tmp_path):
    from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, materialize

    training = tmp_path / "load" / "training"
    (training / "sweeps").mkdir(parents=True)
    (training / "load_base.yaml").write_text(yaml.safe_dump(BASE))
    for i, name in enumerate(SWEEPS):
        (training / "sweeps" / f"{name}.yaml").write_text(yaml.safe_dump({
            "name": name, "base_config": "load_base.yaml", "num_trials": 2, "scheduler": "none", "seed": i,
            "max_concurrent_trials": 1, "search_space": {"optimizer.lr": {"loguniform": [1e-4, 1e-2]}}}))
    home = tmp_path / "home"
    (home / "dagster").mkdir(parents=True)
    (home / "dagster" / "dagster.yaml").write_text(instance_yaml(pg_database))
    env = {**os.environ, "DAGSTER_HOME": str(home / "dagster"), "TUNIX_RT_HOME": str(home),
           "TUNIX_RT_DATABASE_URL": pg_database.render_as_string(hide_password=False),
           "TUNIX_RT_LOAD_DIR": str(tmp_path / "load")}
    os.environ.update({k: env[k] for k in ("DAGSTER_HOME", "TUNIX_RT_HOME", "TUNIX_RT_DATABASE_URL", "TUNIX_RT_LOAD_DIR")})
    try:
        from tunix_rt_pipelines_tests.tuning import queue_location
        import importlib
        location = importlib.reload(queue_location)
        instance = DagsterInstance.get()
        upstream = [k for a in location.defs.assets for k in a.keys
                    if k.path[0] in ("dev_reasoning", "evalset", "base_model") or k.path[-1] == "dev_reasoning_sft"]
        assert materialize(location.defs.assets, instance=instance, resources=location.defs.resources,
                           selection=upstream, run_config={"ops": {"dev_reasoning": {"config": {"size": 120}}}}).success

        # The tests package is not installed: the location is imported from the repository root.
        module = ["-m", "tunix_rt_pipelines_tests.tuning.queue_location", "-d", str(REPO_ROOT)]
        daemon = subprocess.Popen([sys.executable, "-m", "dagster._daemon", "run", *module], env=env, cwd=REPO_ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            for name in SWEEPS:
                subprocess.run([sys.executable, "-m", "dagster", "job", "launch", *module, "-j", f"sweep_{name}",
                                "--tags", '{"compute": "gpu"}'], env=env, check=True, capture_output=True, timeout=120)
            deadline, most_running = time.time() + 600, 0
            while time.time() < deadline:
                runs = instance.get_runs()
                running = [r for r in runs if r.status == DagsterRunStatus.STARTED]
                most_running = max(most_running, len(running))
                if len(runs) == 4 and all(r.is_finished for r in runs):  # 3 sweeps + the upstream run
                    break
                time.sleep(1)
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(timeout=60)

        sweeps = [r for r in instance.get_runs() if r.job_name.startswith("sweep_")]
        assert sorted(r.job_name for r in sweeps) == [f"sweep_{n}" for n in SWEEPS]
        failures = {r.job_name: [str(e.dagster_event.event_specific_data)[:1500]
                                 for e in instance.all_logs(r.run_id) if e.is_dagster_event and e.dagster_event.is_failure]
                    for r in sweeps if r.status != DagsterRunStatus.SUCCESS}
        assert not failures, failures
        assert most_running <= 1
        records = {r.run_id: instance.get_run_record_by_id(r.run_id) for r in sweeps}
        spans = sorted((rec.start_time, rec.end_time) for rec in records.values())
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))  # never overlapping
        for run in sweeps:
            types = [e.dagster_event.event_type for e in instance.all_logs(run.run_id) if e.dagster_event]
            assert types.count(DagsterEventType.RUN_START) == 1 and types.count(DagsterEventType.RUN_SUCCESS) == 1
            assert types.count(DagsterEventType.STEP_START) == types.count(DagsterEventType.STEP_SUCCESS) == 1
            assert types.count(DagsterEventType.ASSET_MATERIALIZATION) == 1
            assert types.index(DagsterEventType.RUN_ENQUEUED) < types.index(DagsterEventType.RUN_START)
        from tunix_rt_pipelines.traces.store import TraceStore
        from tunix_rt_pipelines.tuning.trials import trials_of
        engine = TraceStore(env["TUNIX_RT_DATABASE_URL"]).engine
        assert [len(trials_of(engine, n)) for n in SWEEPS] == [2, 2, 2]
        instance.dispose()
    finally:
        for k in ("DAGSTER_HOME", "TUNIX_RT_HOME", "TUNIX_RT_DATABASE_URL", "TUNIX_RT_LOAD_DIR"):
            os.environ.pop(k, None)
