"""A file dropped into the inbox of a running deployment is ingested by the daemon, with no command.

``dagster dev``'s daemon evaluates the inbox sensor every 15 s: a first tick renames a name that is
not a partition key, a later one adds the partition and requests the run, which the daemon dequeues
and the run launcher starts, as for any scheduled run.
"""

from __future__ import annotations

import json
import os
import time

from tunix_rt_pipelines.traces.store import TraceStore
from tunix_rt_pipelines_tests.conftest import trace_dict

RUNS = """
query {
  runsOrError(filter: {pipelineName: "ingest_trace_files"}) {
    ... on Runs { results { runId status tags { key value } } }
  }
}
"""
TIMEOUT_S = 240


def test_a_file_dropped_into_the_inbox_is_renamed_and_ingested_by_the_daemon(deployment):
    path = deployment.settings.inbox_dir / "dropped by hand.jsonl"
    path.write_text("".join(json.dumps(trace_dict(i, metadata={"source": "dropped", "category": "arithmetic"})) + "\n"
                            for i in range(3)))
    os.utime(path, (time.time() - 60, time.time() - 60))  # settled: no copy in progress
    deadline, runs = time.monotonic() + TIMEOUT_S, []
    while time.monotonic() < deadline:
        runs = deployment.gql(RUNS)["runsOrError"]["results"]
        if any(r["status"] in ("SUCCESS", "FAILURE") for r in runs):
            break
        time.sleep(2)
    assert [(r["status"], {t["key"]: t["value"] for t in r["tags"]}.get("dagster/partition")) for r in runs] == [
        ("SUCCESS", "dropped_by_hand.jsonl")], deployment.log_tail()
    assert not path.exists() and (deployment.settings.inbox_dir / "dropped_by_hand.jsonl").is_file()
    assert TraceStore(deployment.settings.database_url).stats()["by_source"].get("dropped") == 3
