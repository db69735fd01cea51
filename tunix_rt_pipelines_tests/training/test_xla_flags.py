import os
import subprocess
import sys

from tunix_rt_pipelines.training import xla_flags


def test_flags_are_added_to_the_users_own():
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    assert xla_flags.apply(env) == "--xla_force_host_platform_device_count=2 --xla_cpu_experimental_ynn_fusion_type="


def test_a_flag_the_user_set_is_left_alone():
    env = {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_DOT"}
    assert xla_flags.apply(env) == "--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_DOT"
    assert xla_flags.apply({}) == "--xla_cpu_experimental_ynn_fusion_type="


def test_jax_compiles_dots_without_ynnpack_once_our_jax_modules_are_imported():
    # A fresh process: the flag must be in place before JAX starts its CPU backend.
    code = (
        "import tunix_rt_pipelines.inference.jax_generate\n"
        "import jax, jax.numpy as jnp\n"
        "hlo = jax.jit(lambda a, b: a @ b).lower(jnp.ones((16, 384)), jnp.ones((384, 64))).compile().as_text()\n"
        "print('ynn' in hlo.lower())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_nothing_is_set_where_a_gpu_or_tpu_plugin_is_installed(tmp_path):
    (tmp_path / "jax_plugins").mkdir()
    (tmp_path / "jax_plugins" / "__init__.py").write_text("")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), *sys.path])
    code = "import os, tunix_rt_pipelines.training.xla_flags\nprint(repr(os.environ.get('XLA_FLAGS')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "None"
