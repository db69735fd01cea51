"""The whole graph on a tiny config, run once: base model -> checkpoint -> predictions -> evaluations
-> leaderboard -> gate -> registered version; then the registry and packaging on what it left.

The tests below share that one run and read its home folder; the last one changes it (adds a
baseline the model cannot meet) and so comes last.
"""

import hashlib
import json
import os
import subprocess
import sys
import zipfile

import pytest
import sqlalchemy as sa
import yaml
from dagster import DagsterInstance, materialize

from tunix_rt_pipelines.core.db import dispose_engines, evaluations
from tunix_rt_pipelines.core.settings import REPO_ROOT, Settings
from tunix_rt_pipelines.datasets.assets import dataset_assets
from tunix_rt_pipelines.definitions import EVALSET, build_definitions
from tunix_rt_pipelines.evalsets.assets import evalset_assets, evalset_key
from tunix_rt_pipelines.evaluation.assets import build_comparison_asset, build_evaluation_assets, build_leaderboard_asset
from tunix_rt_pipelines.evaluation.store import item_outcomes, leaderboard, save_evaluation
from tunix_rt_pipelines.inference.assets import build_prediction_assets
from tunix_rt_pipelines.registry.assets import build_gate_check, build_registration_asset, champion_evaluation_asset
from tunix_rt_pipelines.registry.baselines import set_baseline
from tunix_rt_pipelines.registry.versions import get_version
from tunix_rt_pipelines.synthetic.assets import dev_reasoning
from tunix_rt_pipelines.training.assets import build_training_assets
from tunix_rt_pipelines.traces.store import TraceStore

CONFIG = {"name": "graph_test", "dataset": "dev_reasoning_sft", "backend": "torch", "seq_len": 256, "batch_size": 4,
          "steps": 20, "checkpoint_every": 10, "log_every": 10, "eval_every": 10, "eval_batches": 1,
          "model": {"family": "qwen3", "source": "build:tiny", "hidden_size": 32, "num_layers": 1, "num_heads": 2,
                    "num_kv_heads": 1, "head_dim": 16, "intermediate_size": 64, "vocab_size": 400}}


class Graph:
    def __init__(self, tmp_path):
        cfg_path = tmp_path / "graph_test.yaml"
        cfg_path.write_text(yaml.safe_dump(CONFIG))
        self.home = tmp_path / "home"
        self.settings = Settings(home=self.home, database_url=f"sqlite:///{self.home / 'tunix_rt.db'}")
        self.settings.ensure_dirs()
        self.evaluations = build_evaluation_assets(cfg_path)
        self.registration = build_registration_asset(cfg_path)
        self.assets = [dev_reasoning, *dataset_assets(REPO_ROOT / "training" / "datasets"),
                       *evalset_assets(EVALSET.parent), *build_training_assets(cfg_path),
                       *build_prediction_assets(cfg_path, EVALSET), *self.evaluations,
                       build_leaderboard_asset([k for a in self.evaluations for k in a.keys]),
                       build_comparison_asset(cfg_path), self.registration, build_gate_check(cfg_path)]
        self.champion_evaluation = champion_evaluation_asset("graph_test", evalset_key(EVALSET))
        self.resources = build_definitions(self.settings).resources
        self.instance = DagsterInstance.local_temp(str(self.settings.dagster_home))

    def materialize(self, selection, run_config=None, **kwargs):
        return materialize(self.assets, instance=self.instance, resources=self.resources, selection=selection,
                           run_config=run_config, **kwargs)

    @property
    def engine(self):
        return TraceStore(self.settings.database_url).engine

    def cli(self, *args, ok=True):
        env = {**os.environ, "TUNIX_RT_HOME": str(self.home), "DAGSTER_HOME": str(self.settings.dagster_home)}
        env.pop("TUNIX_RT_DATABASE_URL", None)
        result = subprocess.run([sys.executable, "-m", "tunix_rt_pipelines.cli", *args], capture_output=True,
                                text=True, env=env, timeout=300, check=False)
        assert (result.returncode == 0) == ok, result.stdout[-2000:] + result.stderr[-2000:]
        return result


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    g = Graph(tmp_path_factory.mktemp("graph"))
    selection = [k for a in g.assets for k in a.keys if k.path[0] != "dataset" or k.path[1] == "dev_reasoning_sft"]
    g.assets.append(g.champion_evaluation)  # materialised on its own below
    g.result = g.materialize(selection, {"ops": {
        "dev_reasoning": {"config": {"size": 120}},
        "predictions__graph_test__base": {"config": {"max_new_tokens": 16}},
        "predictions__graph_test__trained": {"config": {"max_new_tokens": 16}}}})
    assert g.result.success
    g.registered = g.result.asset_materializations_for_node("model_version__graph_test")[0].metadata
    yield g
    g.instance.dispose()
    dispose_engines()


def test_every_stage_materialises_and_the_leaderboard_lists_both_models(graph):
    board = graph.result.asset_materializations_for_node("leaderboard")[0].metadata
    comparison = graph.result.asset_materializations_for_node("comparison__graph_test")[0].metadata
    assert sorted(r["label"] for r in leaderboard(graph.engine)) == ["graph_test/base", "graph_test/trained"]
    assert board["evaluations"].value == 2 and len(board["leaderboard"].value.records) == 2
    assert comparison["n_paired"].value == 100 and 0.0 <= comparison["mcnemar_p"].value <= 1.0


def test_the_first_version_to_pass_its_gate_becomes_champion_with_its_provenance(graph):
    version = get_version(graph.engine, "graph_test@champion")
    assert version.id == graph.registered["version_id"].value and graph.registered["gate_passed"].value
    p = version.provenance
    assert p["evaluation_id"] == graph.registered["evaluation_id"].value and p["gate_id"]
    assert {"dataset_digest", "trace_ids_digest", "config_hash", "code_version", "checkpoint_digest"} <= set(p)


def test_registry_cli_lists_shows_downloads_and_promotes_idempotently(graph, tmp_path):
    (row,) = json.loads(graph.cli("registry", "list", "--json").stdout)
    assert row["label"] == "graph_test:1" and row["aliases"] == ["candidate", "champion"]
    shown = json.loads(graph.cli("registry", "show", "graph_test@champion", "--json").stdout)
    assert shown["gate"]["passed"] and shown["alias_history"][-1]["alias"] == "champion"
    graph.cli("registry", "download", "graph_test:1", "--out", str(tmp_path))
    assert (tmp_path / "graph_test-v1" / "model.safetensors").is_file()
    assert "nothing changed" in graph.cli("registry", "promote", "graph_test:1").stdout
    assert "not allowed" in graph.cli("registry", "download", "../evil@champion", "--out", "x", ok=False).stderr


def test_package_bundles_the_version_from_its_records_and_is_reproducible(graph, tmp_path):
    first = graph.cli("package", "graph_test@champion", "--out", str(tmp_path / "a")).stdout
    second = graph.cli("package", "graph_test@champion", "--out", str(tmp_path / "b")).stdout
    assert first.split("sha256 ")[1] == second.split("sha256 ")[1]
    (archive,) = (tmp_path / "a").glob("*.zip")
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        sums = dict(reversed(line.split("  ")) for line in zf.read("SHA256SUMS").decode().splitlines())
        assert all(hashlib.sha256(zf.read(n)).hexdigest() == digest for n, digest in sums.items())
        card = zf.read("MODEL_CARD.md").decode()
        assert zf.read("evalset/eval_set.jsonl") == EVALSET.read_bytes()
    assert {"config/graph_test.yaml", "eval_summary.json", "run_manifest.json", "manifests/checkpoint.json",
            "manifests/dataset.json", "item_scores.jsonl", "loss_curve.png"} <= names
    assert "graph_test:1 (candidate, champion)" in card and "Primary score" in card


def test_compare_pairs_items_and_draws_the_trained_models_loss_curve(graph):
    out = json.loads(graph.cli("compare", "graph_test/base", "graph_test/trained", "--json").stdout)
    (pair,) = out["comparisons"]
    assert pair["n_paired"] == 100 and pair["b"] == "graph_test/trained"
    with open(out["loss_curves"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_re_evaluating_the_champion_on_the_same_eval_set_stores_nothing_new(graph):
    result = graph.materialize([graph.champion_evaluation.key])
    md = result.asset_materializations_for_node("champion_evaluation__graph_test")[0].metadata
    assert md["version"].value == "graph_test:1" and md["newly_evaluated"].value is False
    assert md["evaluation_id"].value == graph.registered["evaluation_id"].value


def test_the_champion_is_scored_on_a_changed_eval_set_with_its_registered_sampling(graph, tmp_path):
    from tunix_rt_pipelines.core.artifacts import ArtifactStore
    from tunix_rt_pipelines.registry.reevaluate import evaluate_version

    changed = tmp_path / "eval_v1.jsonl"
    changed.write_text("".join(EVALSET.read_text().splitlines(keepends=True)[:-1]))
    artifacts = ArtifactStore(graph.settings.artifacts_dir)
    sha = artifacts.put_file(changed)
    champion = get_version(graph.engine, "graph_test@champion")
    record, created = evaluate_version(graph.engine, artifacts, champion, sha, graph.settings.models_dir)
    assert created and record["n_items"] == 99 and record["label"] == "graph_test:1"
    again, created_again = evaluate_version(graph.engine, artifacts, champion, sha, graph.settings.models_dir)
    assert again["id"] == record["id"] and created_again is False


def perfect_copy(engine, evaluation_id: str) -> str:
    """A stored evaluation with the same items, every one of them right."""
    with engine.connect() as conn:
        record = dict(conn.execute(sa.select(evaluations).where(evaluations.c.id == evaluation_id)).mappings().one())
    items = [{**row, "outcome": "correct"} for row in item_outcomes(engine, evaluation_id).values()]
    for row in items:
        row.pop("evaluation_id")
    record.update(id="f" * 64, label="perfect", primary_score=1.0, created_at=None)
    save_evaluation(engine, record, items)
    return record["id"]


def test_a_failed_blocking_gate_stops_the_run_before_registration(graph):
    set_baseline(graph.engine, "perfect", perfect_copy(graph.engine, graph.registered["evaluation_id"].value),
                 max_drop=0.0)
    again = graph.materialize([graph.evaluations[1].key, *graph.registration.keys], raise_on_error=False)
    assert not again.success and not again.asset_materializations_for_node("model_version__graph_test")
    checks = {e.check_name: e.passed for e in again.get_asset_check_evaluations()}
    assert checks == {"regression_baselines": False, "no_regression_vs_champion": True}
    assert "FAILED" in graph.cli("registry", "gate", "graph_test:1", ok=False).stdout
