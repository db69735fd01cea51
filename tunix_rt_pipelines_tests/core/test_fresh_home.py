"""Processes that start together on a new home set it up once, and all of them can use it."""

import subprocess
import sys

_OPEN_HOME = """
from tunix_rt_pipelines.core.settings import Settings
from tunix_rt_pipelines.traces.store import TraceStore

settings = Settings.from_env()
settings.dagster_instance().get_run_records()
print(TraceStore(settings.database_url).stats()["traces"])
"""


def test_four_processes_opening_a_new_home_at_once_all_succeed(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("TUNIX_RT_DATABASE_URL", raising=False)
    monkeypatch.setenv("TUNIX_RT_HOME", str(tmp_path / "home"))
    procs = [subprocess.Popen([sys.executable, "-c", _OPEN_HOME],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [(p.wait(timeout=300), p.stdout.read().strip(), p.stderr.read()[-1500:]) for p in procs]
    assert [(rc, out) for rc, out, _ in results] == [(0, "0")] * 4, results
