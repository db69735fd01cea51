"""Terminating a training run the way the UI does leaves no training process behind.

The run is launched through the webserver (``launchRun``: queued, dequeued by the daemon, started by
the default run launcher in the code server, steps in their own processes), the training worker is
a Pipes subprocess of the checkpoint step, and the run is stopped with the ``terminateRun`` mutation
that the UI's Terminate button sends. Nothing here signals a process itself.

The long config logs nothing once training runs: a worker left behind would otherwise die anyway at its
next Pipes message (the message file goes with the step). Checked: with
``PipesSubprocessClient(forward_termination=False)`` the worker is left running and this test fails.
"""

from __future__ import annotations

import time

import psutil

from tunix_rt_pipelines_tests.deployment.tiny_graph import LONG

LAUNCH = """
mutation($selector: JobOrPipelineSelector!) {
  launchRun(executionParams: {selector: $selector, runConfigData: "{}"}) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
TERMINATE = """
mutation($runId: String!) {
  terminateRun(runId: $runId, terminatePolicy: SAFE_TERMINATE) {
    __typename
    ... on TerminateRunFailure { message }
    ... on PythonError { message }
  }
}
"""
STATUS = 'query($runId: ID!) { runOrError(runId: $runId) { ... on Run { status } } }'
MESSAGES = """
query($runId: ID!) {
  logsForRun(runId: $runId, limit: 5000) {
    ... on EventConnection { events { __typename ... on MessageEvent { message } } }
  }
}
"""
# Processes that serve every run and outlive them; anything between them and the worker is this run's.
SERVER_PROCESSES = ("api grpc", "code-server", " dev ", "dagster_webserver", "dagster._daemon")


def run_status(deployment, run_id: str) -> str:
    return deployment.gql(STATUS, runId=run_id)["runOrError"]["status"]


def run_messages(deployment, run_id: str) -> list[str]:
    events = deployment.gql(MESSAGES, runId=run_id)["logsForRun"].get("events", [])
    return [e["message"] for e in events if "message" in e]


def launch(deployment, job_name: str) -> str:
    (repo,) = deployment.gql("{ repositoriesOrError { ... on RepositoryConnection { nodes { name location "
                             "{ name } } } } }")["repositoriesOrError"]["nodes"]
    result = deployment.gql(LAUNCH, selector={"repositoryLocationName": repo["location"]["name"],
                                              "repositoryName": repo["name"], "jobName": job_name})["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return result["run"]["runId"]


def wait_for(predicate, timeout_s: float, what: str, on_timeout=lambda: ""):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}\n{on_timeout()}")


def run_processes(worker: psutil.Process) -> list[psutil.Process]:
    """The worker and its ancestors up to the long-lived server processes: the step and run processes."""
    chain = [worker]
    for parent in worker.parents():
        if any(name in " ".join(parent.cmdline()) for name in SERVER_PROCESSES):
            break
        chain.append(parent)
    return chain


def cpu_seconds_over(proc: psutil.Process, interval_s: float) -> float:
    before = sum(proc.cpu_times()[:2])
    time.sleep(interval_s)
    return sum(proc.cpu_times()[:2]) - before


def is_running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_terminating_a_training_run_from_dagster_stops_its_worker_process(deployment):
    assert not deployment.training_workers()
    run_id = launch(deployment, f"train_{LONG}")
    # Training is under way: the worker exists, has said it is starting, and is busy computing.
    (worker,) = wait_for(deployment.training_workers, 180, "the training worker to start",
                         lambda: f"status {run_status(deployment, run_id)}\n{deployment.log_tail()}")
    wait_for(lambda: any(m.startswith("examples: ") for m in run_messages(deployment, run_id)), 120,
             "the worker's last line before training", lambda: "\n".join(run_messages(deployment, run_id)[-20:]))
    assert cpu_seconds_over(worker, 2.0) > 0.5
    processes = run_processes(worker)
    assert len(processes) >= 2, [p.cmdline() for p in processes]  # at least the worker and its step process
    assert run_status(deployment, run_id) == "STARTED"

    result = deployment.gql(TERMINATE, runId=run_id)["terminateRun"]
    assert result["__typename"] == "TerminateRunSuccess", result

    wait_for(lambda: run_status(deployment, run_id) == "CANCELED", 60, "the run to be CANCELED",
             lambda: f"status {run_status(deployment, run_id)}")
    _, alive = psutil.wait_procs(processes, timeout=30)
    alive = [p for p in alive if is_running(p)]
    assert not alive, [(p.pid, " ".join(p.cmdline())[:200]) for p in alive]
    assert not deployment.training_workers()
    messages = run_messages(deployment, run_id)
    assert any("sending SIGINT to subprocess" in m for m in messages), messages[-20:]
