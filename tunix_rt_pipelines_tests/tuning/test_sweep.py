"""A tiny sweep on a real local Ray, through Dagster: run, re-run (reuse), resume, extend, best, registry.

One module-scoped sweep of 20-step trials on a 1-layer model; the tests share its home and run in
file order (each later one builds on what the earlier ones left).
"""

import json

import pytest
import yaml
from dagster import DagsterInstance, Definitions, materialize

from tunix_rt_pipelines.core.db import dispose_engines
from tunix_rt_pipelines.core.settings import REPO_ROOT, Settings
from tunix_rt_pipelines.datasets.assets import dataset_assets
from tunix_rt_pipelines.definitions import EVALSET, build_definitions
from tunix_rt_pipelines.evalsets.assets import evalset_assets
from tunix_rt_pipelines.registry.versions import get_version
from tunix_rt_pipelines.synthetic.assets import dev_reasoning
from tunix_rt_pipelines.training.assets import build_training_assets
from tunix_rt_pipelines.traces.store import TraceStore
from tunix_rt_pipelines.tuning.assets import build_sweep_assets, build_sweep_jobs, trials_partitions
from tunix_rt_pipelines.tuning.run import run_sweep_pipeline
from tunix_rt_pipelines.tuning.spec import base_config, load_sweep_spec, trial_config, trial_key
from tunix_rt_pipelines.tuning.trials import TrialRecord, record_trials, sweep_row, trials_of

BASE = {"name": "sweep_base", "dataset": "dev_reasoning_sft", "backend": "torch", "seq_len": 256, "batch_size": 4,
        "steps": 20, "checkpoint_every": 10, "log_every": 10, "eval_every": 10, "eval_batches": 1,
        "model": {"family": "qwen3", "source": "build:tiny", "hidden_size": 32, "num_layers": 1, "num_heads": 2,
                  "num_kv_heads": 1, "head_dim": 16, "intermediate_size": 64, "vocab_size": 400}}
SPEC = {"name": "tiny_sweep", "base_config": "sweep_base.yaml", "num_trials": 3, "max_concurrent_trials": 2,
        "search_space": {"optimizer.lr": {"loguniform": [1e-4, 1e-2]}, "batch_size": {"choice": [2, 4]}},
        "scheduler": "asha", "asha": {"grace_period": 10, "reduction_factor": 2}, "seed": 3}
TRIAL_OPS = {"trial_predictions__tiny_sweep": {"config": {"max_new_tokens": 8}}}


class Sweep:
    def __init__(self, tmp):
        training = tmp / "training"
        (training / "sweeps").mkdir(parents=True)
        (training / "sweep_base.yaml").write_text(yaml.safe_dump(BASE))
        spec_path = training / "sweeps" / "tiny_sweep.yaml"
        spec_path.write_text(yaml.safe_dump(SPEC))
        self.spec = load_sweep_spec(spec_path)
        home = tmp / "home"
        self.settings = Settings(home=home, database_url=f"sqlite:///{home / 'tunix_rt.db'}")
        self.settings.ensure_dirs()
        sweep_assets, self.checks = build_sweep_assets(spec_path, training, EVALSET)
        self.upstream = [dev_reasoning, *dataset_assets(REPO_ROOT / "training" / "datasets"),
                         *evalset_assets(EVALSET.parent), *build_training_assets(training / "sweep_base.yaml")]
        self.training = training
        self.resources = build_definitions(self.settings).resources
        self.defs = Definitions(assets=[*self.upstream, *sweep_assets], asset_checks=self.checks,
                                jobs=build_sweep_jobs(self.spec, base_config(self.spec, training)),
                                resources=self.resources)
        self.instance = DagsterInstance.local_temp(str(self.settings.dagster_home))
        self.engine = TraceStore(self.settings.database_url).engine

    def pipeline(self, **kwargs):
        return run_sweep_pipeline(self.defs, self.instance, "tiny_sweep", trial_ops=TRIAL_OPS, say=lambda m: None,
                                  **kwargs)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    import ray

    s = Sweep(tmp_path_factory.mktemp("sweep"))
    keys = [k for a in s.upstream for k in a.keys if k.path[0] != "dataset" or k.path[1] == "dev_reasoning_sft"]
    keys = [k for k in keys if k.path[0] != "checkpoint"]
    assert materialize(s.upstream, instance=s.instance, resources=s.resources, selection=keys,
                       run_config={"ops": {"dev_reasoning": {"config": {"size": 120}}}}).success
    s.first = s.pipeline()
    yield s
    ray.shutdown()
    s.instance.dispose()
    dispose_engines()


def test_every_trial_is_recorded_and_finished_ones_become_partitions(sweep):
    assert sweep.first["success"], sweep.first
    trials = trials_of(sweep.engine, "tiny_sweep")
    assert len(trials) == 3 and {t.status for t in trials} <= {"finished", "stopped_early"}
    finished = sorted(t.trial_key for t in trials if t.status == "finished")
    assert sorted(sweep.instance.get_dynamic_partitions(trials_partitions("tiny_sweep").name)) == finished
    assert all(t.origin == "random" and t.params and t.val_loss is not None for t in trials)


def test_the_best_trial_is_registered_through_the_gate(sweep):
    row = sweep_row(sweep.engine, "tiny_sweep")
    best = min((t for t in trials_of(sweep.engine, "tiny_sweep") if t.status == "finished"), key=lambda t: t.val_loss)
    assert row["best_trial_key"] == best.trial_key
    champion = get_version(sweep.engine, "tiny_sweep@champion")
    assert champion.provenance["config_hash"] == best.config_hash and champion.provenance["gate_id"]


def test_running_the_sweep_again_reuses_finished_trials(sweep):
    before = {t.trial_key: t for t in trials_of(sweep.engine, "tiny_sweep")}
    results = {k: (sweep.settings.runs_dir / "sweeps" / "tiny_sweep" / k / "result.json") for k, t in before.items()
               if t.status == "finished"}
    stamps = {k: p.stat().st_mtime_ns for k, p in results.items()}
    again = sweep.pipeline()
    assert again["success"] and again["trials"] == {}  # no new partition to evaluate
    assert {k: p.stat().st_mtime_ns for k, p in results.items()} == stamps  # nothing retrained
    assert set(t.trial_key for t in trials_of(sweep.engine, "tiny_sweep")) == set(before)


def test_resume_reruns_a_failed_and_a_killed_trial_alone(sweep):
    runs = sweep.settings.runs_dir / "sweeps" / "tiny_sweep"
    killed = {"optimizer.lr": 0.005, "batch_size": 2}  # started (params.json) but never finished
    (runs / "killed").mkdir()
    (runs / "killed" / "params.json").write_text(json.dumps(killed))
    params = {"optimizer.lr": 0.002, "batch_size": 4}
    cfg = trial_config(base_config(sweep.spec, sweep.training), sweep.spec, params)
    failed = TrialRecord(trial_key=trial_key(cfg), params=params, config_hash=cfg.config_hash, status="failed",
                         val_loss=None, final_loss=None, steps_done=0, run_dir="-", error="RuntimeError: worker died")
    record_trials(sweep.engine, "tiny_sweep", [failed])
    n_before = len(trials_of(sweep.engine, "tiny_sweep"))
    out = sweep.pipeline(mode="resume")
    assert out["success"] and len(out["trials"]) == 2
    rerun = [t for t in trials_of(sweep.engine, "tiny_sweep") if t.origin == "rerun"]
    assert sorted(t.params["optimizer.lr"] for t in rerun) == [0.002, 0.005]
    assert all(t.status == "finished" for t in rerun)
    assert len(trials_of(sweep.engine, "tiny_sweep")) == n_before + 1  # the failed one was replaced, not added


def test_extend_adds_warm_started_trials(sweep):
    n_before = len(trials_of(sweep.engine, "tiny_sweep"))
    out = sweep.pipeline(mode="extend", num_trials=2)
    trials = trials_of(sweep.engine, "tiny_sweep")
    assert out["success"] and len(trials) == n_before + 2
    assert sum(t.origin == "warm_start" for t in trials) == 2
