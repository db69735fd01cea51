"""The whole graph on a tiny config: base model -> checkpoint -> predictions -> evaluations -> leaderboard."""

import yaml
from dagster import instance_for_test, materialize

from tunix_rt_pipelines.core.settings import REPO_ROOT, Settings
from tunix_rt_pipelines.datasets.assets import dataset_assets
from tunix_rt_pipelines.definitions import EVALSET, build_definitions
from tunix_rt_pipelines.evalsets.assets import evalset_assets
from tunix_rt_pipelines.evaluation.assets import build_comparison_asset, build_evaluation_assets, build_leaderboard_asset
from tunix_rt_pipelines.evaluation.store import leaderboard
from tunix_rt_pipelines.inference.assets import build_prediction_assets
from tunix_rt_pipelines.synthetic.assets import dev_reasoning
from tunix_rt_pipelines.training.assets import build_training_assets
from tunix_rt_pipelines.traces.store import TraceStore

CONFIG = {"name": "graph_test", "dataset": "dev_reasoning_sft", "backend": "torch", "seq_len": 256, "batch_size": 4,
          "steps": 20, "checkpoint_every": 10, "log_every": 10, "eval_every": 10, "eval_batches": 1,
          "model": {"family": "qwen3", "source": "build:tiny", "hidden_size": 32, "num_layers": 1, "num_heads": 2,
                    "num_kv_heads": 1, "head_dim": 16, "intermediate_size": 64, "vocab_size": 400}}


def test_every_stage_materialises_and_the_leaderboard_lists_both_models(tmp_path):
    cfg_path = tmp_path / "graph_test.yaml"
    cfg_path.write_text(yaml.safe_dump(CONFIG))
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'home' / 'db.sqlite'}")
    settings.ensure_dirs()
    evaluations = build_evaluation_assets(cfg_path)
    assets = [dev_reasoning, *dataset_assets(REPO_ROOT / "training" / "datasets"), *evalset_assets(EVALSET.parent),
              *build_training_assets(cfg_path), *build_prediction_assets(cfg_path, EVALSET), *evaluations,
              build_leaderboard_asset([k for a in evaluations for k in a.keys]), build_comparison_asset(cfg_path)]
    selection = [k for a in assets for k in a.keys if k.path[0] != "dataset" or k.path[1] == "dev_reasoning_sft"]
    with instance_for_test() as instance:
        result = materialize(assets, instance=instance, resources=build_definitions(settings).resources,
                             selection=selection,
                             run_config={"ops": {"dev_reasoning": {"config": {"size": 120}},
                                                 "predictions__graph_test__base": {"config": {"max_new_tokens": 16}},
                                                 "predictions__graph_test__trained": {"config": {"max_new_tokens": 16}}}})
        assert result.success
        board = result.asset_materializations_for_node("leaderboard")[0].metadata
        comparison = result.asset_materializations_for_node("comparison__graph_test")[0].metadata
    rows = leaderboard(TraceStore(settings.database_url).engine)
    assert sorted(r["label"] for r in rows) == ["graph_test/base", "graph_test/trained"]
    assert board["evaluations"].value == 2 and len(board["leaderboard"].value.records) == 2
    assert comparison["n_paired"].value == 100 and 0.0 <= comparison["mcnemar_p"].value <= 1.0
