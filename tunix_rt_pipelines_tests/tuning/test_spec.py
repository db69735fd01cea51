import pytest
import yaml

from tunix_rt_pipelines.core.settings import REPO_ROOT
from tunix_rt_pipelines.training.config import load_config
from tunix_rt_pipelines.tuning.spec import SweepSpecError, load_sweep_spec, spec_from_dict, trial_config, trial_key

TRAINING = REPO_ROOT / "training"
GOOD = {"name": "s", "base_config": "smoke_tiny.yaml", "search_space": {"optimizer.lr": {"loguniform": [1e-4, 1e-2]}}}


def spec(**changes):
    return spec_from_dict({**GOOD, **changes}, source="sweep.yaml", training_dir=TRAINING)


def test_the_shipped_sweep_spec_is_valid():
    s = load_sweep_spec(TRAINING / "sweeps" / "smoke_sweep.yaml")
    assert s.scheduler == "asha" and set(s.search_space) >= {"optimizer.lr", "batch_size"}


@pytest.mark.parametrize("space, message", [
    ({"optimizer.lr": {"loguniform": [0, 1e-2]}}, "loguniform needs 0 < low < high"),
    ({"optimizer.lr": {"uniform": [0.1, 0.01]}}, "uniform needs numbers low < high"),
    ({"batch_size": {"randint": [4.5, 8]}}, "randint needs integers"),
    ({"batch_size": {"choice": []}}, "non-empty list"),
    ({"optimizer.lr": {"normal": [0, 1]}}, "unknown distribution 'normal'"),
    ({"optimizer.lerning_rate": {"choice": [1e-3]}}, "search_space.optimizer.lerning_rate"),
    ({"batch_size": {"uniform": [2, 8]}}, "expected an integer"),
])
def test_bad_search_spaces_name_the_file_and_field(space, message):
    with pytest.raises(SweepSpecError, match=message) as e:
        spec(search_space=space)
    assert str(e.value).startswith("sweep.yaml: search_space.")


def test_metric_and_mode_must_agree_and_unknown_fields_are_errors():
    with pytest.raises(SweepSpecError, match="mode: primary_score is optimised with mode 'max'"):
        spec(metric="primary_score", mode="min")
    with pytest.raises(SweepSpecError, match="sweep.yaml: num_trails: unknown field"):
        spec(num_trails=3)


def test_trial_keys_follow_the_trial_config():
    s = spec(overrides={"steps": 10})
    base = load_config(TRAINING / "smoke_tiny.yaml")
    a, b = trial_config(base, s, {"optimizer.lr": 1e-3}), trial_config(base, s, {"optimizer.lr": 2e-3})
    assert a.steps == 10 and trial_key(a) == trial_key(trial_config(base, s, {"optimizer.lr": 1e-3}))
    assert trial_key(a) != trial_key(b) and len(trial_key(a)) == 16


def test_a_missing_base_config_is_named(tmp_path):
    path = tmp_path / "sweeps" / "x.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump({**GOOD, "base_config": "nope.yaml"}))
    with pytest.raises(SweepSpecError, match="base_config: .*no such training config"):
        load_sweep_spec(path)
