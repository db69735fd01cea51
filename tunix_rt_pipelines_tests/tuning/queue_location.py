"""A code location for the queue load test: three tiny sweeps over one tiny base config.

Everything comes from environment variables the test sets: ``TUNIX_RT_HOME`` and
``TUNIX_RT_DATABASE_URL`` (as for the product) and ``TUNIX_RT_LOAD_DIR``, a folder holding
``training/load_base.yaml`` and ``training/sweeps/load_{a,b,c}.yaml`` written by the test.
"""

import os
from pathlib import Path

from dagster import Definitions

from tunix_rt_pipelines.core.settings import REPO_ROOT, Settings
from tunix_rt_pipelines.datasets.assets import dataset_assets
from tunix_rt_pipelines.definitions import EVALSET, build_definitions
from tunix_rt_pipelines.evalsets.assets import evalset_assets
from tunix_rt_pipelines.synthetic.assets import dev_reasoning
from tunix_rt_pipelines.training.assets import build_training_assets
from tunix_rt_pipelines.tuning.assets import build_sweep_assets, build_sweep_jobs
from tunix_rt_pipelines.tuning.spec import base_config, load_sweep_spec

SWEEPS = ("load_a", "load_b", "load_c")


def build() -> Definitions:
    training = Path(os.environ["TUNIX_RT_LOAD_DIR"]) / "training"
    assets, checks, jobs = [], [], []
    for name in SWEEPS:
        path = training / "sweeps" / f"{name}.yaml"
        spec = load_sweep_spec(path, training)
        a, c = build_sweep_assets(path, training, EVALSET)
        assets += a
        checks += c
        jobs += build_sweep_jobs(spec, base_config(spec, training))
    upstream = [dev_reasoning, *dataset_assets(REPO_ROOT / "training" / "datasets"), *evalset_assets(EVALSET.parent),
                *build_training_assets(training / "load_base.yaml")]
    return Definitions(assets=[*upstream, *assets], asset_checks=checks, jobs=jobs,
                       resources=build_definitions(Settings.from_env()).resources)


defs = build()
