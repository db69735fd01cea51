"""The code location the deployment tests serve: ``dagster-webserver -m tunix_rt_pipelines_tests.deployment.tiny_location``
with ``TUNIX_RT_HOME`` set to the test's home folder."""

from tunix_rt_pipelines.core.settings import Settings
from tunix_rt_pipelines_tests.deployment.tiny_graph import build_definitions

defs = build_definitions(Settings.from_env())
