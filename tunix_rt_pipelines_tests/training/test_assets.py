"""The checkpoint asset trains in a Pipes subprocess: a SIGKILLed run resumes when re-materialised."""

import os
import signal
import threading
import time
from pathlib import Path

import yaml
from dagster import AssetKey, instance_for_test, materialize

from tunix_rt_pipelines.core.settings import REPO_ROOT, Settings
from tunix_rt_pipelines.datasets.assets import dataset_assets
from tunix_rt_pipelines.definitions import build_definitions
from tunix_rt_pipelines.synthetic.assets import dev_reasoning
from tunix_rt_pipelines.training.assets import build_training_assets, build_training_job

CONFIG = {"name": "kill_test", "dataset": "dev_reasoning_sft", "backend": "torch", "seq_len": 256, "batch_size": 4,
          "steps": 400, "checkpoint_every": 10, "log_every": 10, "eval_every": 0, "seed": 3,
          "model": {"family": "qwen3", "source": "build:tiny", "hidden_size": 32, "num_layers": 1, "num_heads": 2,
                    "num_kv_heads": 1, "head_dim": 16, "intermediate_size": 64, "vocab_size": 400}}


def _our_worker_pids() -> list[int]:
    """Training workers started by this test process (not by anything else running on the machine)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or b"tunix_rt_pipelines.training.worker" not in (proc / "cmdline").read_bytes():
                continue
            ppid = next(int(line.split()[1]) for line in (proc / "status").read_text().splitlines()
                        if line.startswith("PPid:"))
            if ppid == os.getpid():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def _first_complete_checkpoint(runs: Path, timeout: float = 120) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = sorted(runs.glob("kill_test-*/checkpoints/step_*/COMPLETE"))
        if done:
            return done[0].parent
        time.sleep(0.01)
    raise AssertionError("no checkpoint was written in time")


def test_killed_training_resumes_from_its_last_checkpoint(tmp_path):
    cfg_path = tmp_path / "kill_test.yaml"
    cfg_path.write_text(yaml.safe_dump(CONFIG))
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'home' / 'db.sqlite'}")
    settings.ensure_dirs()
    resources = build_definitions(settings).resources
    assets = [dev_reasoning, *dataset_assets(REPO_ROOT / "training" / "datasets"), *build_training_assets(cfg_path)]
    ckpt = AssetKey(["checkpoint", "kill_test"])
    with instance_for_test() as instance:
        prep = materialize(assets, instance=instance, resources=resources,
                           selection=[AssetKey("dev_reasoning"), AssetKey(["dataset", "dev_reasoning_sft"]),
                                      AssetKey(["base_model", "kill_test"])],
                           run_config={"ops": {"dev_reasoning": {"config": {"size": 120}}}})
        assert prep.success
        first: dict = {}
        runner = threading.Thread(target=lambda: first.update(result=materialize(
            assets, instance=instance, resources=resources, selection=[ckpt], raise_on_error=False)))
        runner.start()
        _first_complete_checkpoint(settings.runs_dir)
        pids = _our_worker_pids()
        assert pids, "the training worker was not found"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        runner.join(timeout=120)
        assert not first["result"].success
        second = materialize(assets, instance=instance, resources=resources, selection=[ckpt])
        md = second.asset_materializations_for_node("checkpoint__kill_test")[0].metadata
    assert md["steps"].value == 400
    assert md["resumed_from_step"].value >= 10
    assert md["final_loss"].value < md["history"].value[0]["loss"]


def test_accelerator_configs_queue_as_gpu_runs(tmp_path):
    gpu = tmp_path / "on_gpu.yaml"
    gpu.write_text(yaml.safe_dump({**CONFIG, "name": "on_gpu", "device": "gpu"}))
    cpu = tmp_path / "on_cpu.yaml"
    cpu.write_text(yaml.safe_dump({**CONFIG, "name": "on_cpu"}))
    assert build_training_job(gpu).tags == {"compute": "gpu"}
    assert build_training_job(cpu).tags == {"compute": "cpu"}
    (_, checkpoint) = build_training_assets(gpu)
    assert checkpoint.op.tags["compute"] == "gpu"
