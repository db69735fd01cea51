"""Sweeps join an existing Ray cluster named by RAY_ADDRESS: here a head started as its own process."""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

PROBE = """
import json, sys
import ray
from tunix_rt_pipelines.tuning.ray_tune import init_ray
where = init_ray()
@ray.remote
def node(): return ray.get_runtime_context().get_node_id()
print(json.dumps({"where": where, "gcs": ray.get_runtime_context().gcs_address,
                  "ran_on": ray.get(node.remote()), "nodes": [n["NodeID"] for n in ray.nodes() if n["Alive"]]}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# A cluster with token authentication, as a shared one should run: head and drivers get the token
# from the environment (no ~/.ray/auth_token needed; without one the head would run without auth).
AUTH = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


@pytest.fixture
def ray_head():
    port = free_port()
    temp = Path(f"/tmp/rayt{port}")  # Ray's unix sockets live here: a pytest tmp path is too long for them
    ray_bin = Path(sys.executable).with_name("ray")
    head = subprocess.Popen([str(ray_bin), "start", "--head", "--block", f"--port={port}", "--num-cpus=1",
                             "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, **AUTH})
    yield f"127.0.0.1:{port}"
    os.killpg(head.pid, signal.SIGTERM)
    head.wait(timeout=60)
    shutil.rmtree(temp, ignore_errors=True)


def test_a_sweep_joins_the_cluster_named_by_ray_address(ray_head):
    env = {**os.environ, "RAY_ADDRESS": ray_head, **AUTH}
    deadline = time.time() + 90
    while True:  # the head needs a few seconds before it accepts drivers
        probe = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
        if probe.returncode == 0 or time.time() > deadline:
            break
        time.sleep(3)
    assert probe.returncode == 0, probe.stderr[-2000:]
    import json
    out = json.loads(probe.stdout.strip().splitlines()[-1])
    # The head advertises its interface address; the port says it is the cluster we started.
    assert out["where"] == ray_head and out["gcs"].endswith(":" + ray_head.split(":")[1])
    assert out["ran_on"] in out["nodes"] and len(out["nodes"]) == 1
