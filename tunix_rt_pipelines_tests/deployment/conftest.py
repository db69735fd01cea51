"""One deployment on the embedded default, shared by the tests of this package.

The main job of a tiny code location (``tiny_graph``) runs once, in-process in its own Python
process, on a fresh home folder, as ``tunix-rt run`` does; then ``dagster dev`` (webserver + daemon, as ``tunix-rt ui`` starts it)
serves that home folder on a free loopback port. Tests talk to it over HTTP: GraphQL at
``/graphql`` and, for the browser test, the UI itself.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
from tunix_rt_pipelines.core.settings import DATABASE_URL_ENV, HOME_ENV, REPO_ROOT, Settings

LOCATION_MODULE = "tunix_rt_pipelines_tests.deployment.tiny_location"
WORKER_MODULE = "tunix_rt_pipelines.training.worker"
START_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _default_signals() -> None:
    """Start the server with default SIGINT/SIGTERM handling, as under a terminal or systemd.

    A process started in the background by a non-interactive shell (CI, this test's own runner)
    inherits SIGINT ignored; the server and everything it starts would too.
    """
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)


@dataclass
class Deployment:
    settings: Settings
    url: str
    main_run_id: str
    process: subprocess.Popen
    log_path: Path

    def gql(self, query: str, **variables) -> dict:
        response = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=60)
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def log_tail(self, n: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n:]

    def training_workers(self) -> list[psutil.Process]:
        """Live training worker processes of this home folder, wherever they sit in the process tree
        (an orphan is re-parented away from the server, so searching its descendants is not enough)."""
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            if WORKER_MODULE not in " ".join(proc.info["cmdline"] or []):
                continue
            try:
                if proc.status() != psutil.STATUS_ZOMBIE and proc.environ().get(HOME_ENV) == str(self.settings.home):
                    found.append(proc)
            except psutil.Error:
                pass
        return found


def server_env(settings: Settings) -> dict[str, str]:
    env = {**os.environ, HOME_ENV: str(settings.home), "DAGSTER_HOME": str(settings.dagster_home)}
    env.pop(DATABASE_URL_ENV, None)
    return env


def run_main_job(settings: Settings) -> str:
    """The tiny main job in its own process on the home folder's Dagster instance (as ``tunix-rt run``)."""
    result = subprocess.run([sys.executable, "-m", "tunix_rt_pipelines_tests.deployment.tiny_graph"],
                            cwd=REPO_ROOT, env=server_env(settings), capture_output=True, text=True, timeout=600,
                            check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result.stdout.split()[-1]


def start_server(settings: Settings, port: int, log_path: Path) -> subprocess.Popen:
    env = server_env(settings)
    cmd = [sys.executable, "-m", "dagster", "dev", "-m", LOCATION_MODULE, "-d", str(REPO_ROOT),
           "-h", "127.0.0.1", "-p", str(port)]
    with log_path.open("wb") as log:
        # cwd: the home folder, so the repository's own dagster.yaml (the shared deployment) is not picked up.
        return subprocess.Popen(cmd, cwd=settings.home, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_default_signals)


def wait_until_serving(dep: Deployment) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert dep.process.poll() is None, f"dagster dev exited with {dep.process.returncode}:\n{dep.log_tail()}"
        try:
            if httpx.get(f"{dep.url}/server_info", timeout=5).status_code == 200:
                data = dep.gql("{ repositoriesOrError { __typename ... on RepositoryConnection { nodes { name } } } }")
                if data["repositoriesOrError"].get("nodes"):
                    return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"dagster dev did not serve the code location in {START_TIMEOUT_S}s:\n{dep.log_tail()}")


def stop_server(dep: Deployment) -> None:
    """Ctrl-C for ``dagster dev`` (it shuts down webserver, daemon and code server), then SIGKILL of
    whatever is left in its process group."""
    try:
        os.killpg(dep.process.pid, signal.SIGINT)
        dep.process.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(dep.process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    dep.process.wait(timeout=10)
    for proc in dep.training_workers():  # an orphan that left the group
        proc.kill()


@pytest.fixture(scope="package")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("deployment") / "home"
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'tunix_rt.db'}")
    main_run_id = run_main_job(settings)
    port = free_port()
    log_path = home / "dagster_dev.log"
    dep = Deployment(settings=settings, url=f"http://127.0.0.1:{port}", main_run_id=main_run_id,
                     process=start_server(settings, port, log_path), log_path=log_path)
    try:
        wait_until_serving(dep)
        yield dep
    finally:
        stop_server(dep)
