"""The whole graph on a tiny config: base model -> checkpoint -> predictions -> evaluations -> leaderboard."""

import sqlalchemy as sa
import yaml
from dagster import instance_for_test, materialize

from tunix_rt_pipelines.core.settings import REPO_ROOT, Settings
from tunix_rt_pipelines.datasets.assets import dataset_assets
from tunix_rt_pipelines.definitions import EVALSET, build_definitions
from tunix_rt_pipelines.evalsets.assets import evalset_assets
from tunix_rt_pipelines.evaluation.assets import build_comparison_asset, build_evaluation_assets, build_leaderboard_asset
from tunix_rt_pipelines.core.db import evaluations
from tunix_rt_pipelines.evaluation.store import item_outcomes, leaderboard, save_evaluation
from tunix_rt_pipelines.inference.assets import build_prediction_assets
from tunix_rt_pipelines.synthetic.assets import dev_reasoning
from tunix_rt_pipelines.registry.assets import build_gate_check, build_registration_asset
from tunix_rt_pipelines.registry.baselines import set_baseline
from tunix_rt_pipelines.registry.versions import get_version
from tunix_rt_pipelines.training.assets import build_training_assets
from tunix_rt_pipelines.traces.store import TraceStore

CONFIG = {"name": "graph_test", "dataset": "dev_reasoning_sft", "backend": "torch", "seq_len": 256, "batch_size": 4,
          "steps": 20, "checkpoint_every": 10, "log_every": 10, "eval_every": 10, "eval_batches": 1,
          "model": {"family": "qwen3", "source": "build:tiny", "hidden_size": 32, "num_layers": 1, "num_heads": 2,
                    "num_kv_heads": 1, "head_dim": 16, "intermediate_size": 64, "vocab_size": 400}}


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


def test_every_stage_materialises_the_leaderboard_lists_both_models_and_the_gate_guards_champion(tmp_path):
    cfg_path = tmp_path / "graph_test.yaml"
    cfg_path.write_text(yaml.safe_dump(CONFIG))
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'home' / 'db.sqlite'}")
    settings.ensure_dirs()
    evaluations = build_evaluation_assets(cfg_path)
    assets = [dev_reasoning, *dataset_assets(REPO_ROOT / "training" / "datasets"), *evalset_assets(EVALSET.parent),
              *build_training_assets(cfg_path), *build_prediction_assets(cfg_path, EVALSET), *evaluations,
              build_leaderboard_asset([k for a in evaluations for k in a.keys]), build_comparison_asset(cfg_path),
              build_registration_asset(cfg_path), build_gate_check(cfg_path)]
    selection = [k for a in assets for k in a.keys if k.path[0] != "dataset" or k.path[1] == "dev_reasoning_sft"]
    resources = build_definitions(settings).resources
    with instance_for_test() as instance:
        result = materialize(assets, instance=instance, resources=resources, selection=selection,
                             run_config={"ops": {"dev_reasoning": {"config": {"size": 120}},
                                                 "predictions__graph_test__base": {"config": {"max_new_tokens": 16}},
                                                 "predictions__graph_test__trained": {"config": {"max_new_tokens": 16}}}})
        assert result.success
        board = result.asset_materializations_for_node("leaderboard")[0].metadata
        comparison = result.asset_materializations_for_node("comparison__graph_test")[0].metadata
        registered = result.asset_materializations_for_node("model_version__graph_test")[0].metadata
        engine = TraceStore(settings.database_url).engine
        assert get_version(engine, "graph_test@champion").id == registered["version_id"].value

        # A baseline the trained model cannot meet: the blocking gate stops the run before registration.
        set_baseline(engine, "perfect", perfect_copy(engine, registered["evaluation_id"].value), max_drop=0.0)
        again = materialize(assets, instance=instance, resources=resources, raise_on_error=False,
                            selection=[evaluations[1].key, *build_registration_asset(cfg_path).keys])
        assert not again.success and not again.asset_materializations_for_node("model_version__graph_test")
        checks = {e.check_name: e.passed for e in again.get_asset_check_evaluations()}
        assert checks == {"regression_baselines": False, "no_regression_vs_champion": True}
    rows = leaderboard(TraceStore(settings.database_url).engine)
    assert sorted(r["label"] for r in rows) == ["graph_test/base", "graph_test/trained", "perfect"]
    assert board["evaluations"].value == 2 and len(board["leaderboard"].value.records) == 2
    assert comparison["n_paired"].value == 100 and 0.0 <= comparison["mcnemar_p"].value <= 1.0
