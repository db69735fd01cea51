#!/usr/bin/env bash
# The README's test command (`make test`): the pytest suite, then the Dagster CLI checks.
# PostgreSQL tests need TUNIX_RT_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/test);
# without it they are skipped and pytest says why.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${VENV:-.venv}/bin"

echo "== chromium for the UI browser test"
bash scripts/install_chromium.sh

echo "== pytest"
set +e
"$BIN/python" -m pytest "$@"
status=$?
set -e
# 5 = no tests collected: a suite that ran nothing is a failure here, not a pass.
if [ "$status" -ne 0 ]; then
    echo "pytest failed (exit $status)" >&2
    exit "$status"
fi

# A throwaway embedded home: without DAGSTER_HOME the dagster CLI would read the repository's
# dagster.yaml, which is the shared PostgreSQL deployment's.
SMOKE_HOME="$(mktemp -d)"
trap 'rm -rf "$SMOKE_HOME"' EXIT
mkdir -p "$SMOKE_HOME/dagster"
printf 'telemetry:\n  enabled: false\n' > "$SMOKE_HOME/dagster/dagster.yaml"
export TUNIX_RT_HOME="$SMOKE_HOME" DAGSTER_HOME="$SMOKE_HOME/dagster"

echo "== dagster definitions validate"
"$BIN/dagster" definitions validate -w workspace.yaml

echo "== dagster CLI smoke: materialise the eval set asset"
"$BIN/dagster" asset materialize -m tunix_rt_pipelines.definitions --select 'evalset/eval_v1'
echo "== all checks passed"
