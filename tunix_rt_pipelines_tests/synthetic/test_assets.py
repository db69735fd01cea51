"""The generated-trace assets store their traces like an ingest and never include eval prompts."""

from dagster import instance_for_test, materialize

from tunix_rt_pipelines.core.settings import Settings
from tunix_rt_pipelines.definitions import EVALSET, build_definitions
from tunix_rt_pipelines.evalsets.validate import load_evalset
from tunix_rt_pipelines.synthetic.assets import synthetic_arithmetic
from tunix_rt_pipelines.traces.store import TraceStore


def test_synthetic_arithmetic_stores_its_traces_and_leaves_eval_prompts_out(tmp_path):
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    settings.ensure_dirs()
    with instance_for_test() as instance:
        result = materialize([synthetic_arithmetic], instance=instance, resources=build_definitions(settings).resources,
                             run_config={"ops": {"synthetic_arithmetic": {"config": {"size": 300, "seed": 2026}}}})
    md = result.asset_materializations_for_node("synthetic_arithmetic")[0].metadata
    stored = TraceStore(settings.database_url).iter_traces()
    assert md["traces"].value == md["accepted"].value == len(stored) == 300
    assert not {t["prompt"] for t in stored} & {item.prompt for item in load_evalset(EVALSET)}
