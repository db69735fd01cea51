# Two commands on a fresh machine: `make run` (the main job, end to end) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Extras installed by default: both training backends (CPU builds), PostgreSQL, Ray Tune for sweeps.
EXTRAS ?= postgres,dev,torch,jax,tune
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: install run test ui clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[$(EXTRAS)]"
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# Materialise the whole graph on the embedded default (SQLite + local files under .tunix_rt).
run: install
	$(BIN)/tunix-rt run

# Unit and integration tests, then the Dagster CLI checks CI runs.
test: install
	bash scripts/test.sh

# The product's UI: Dagster's webserver + daemon on the embedded default.
ui: install
	$(BIN)/tunix-rt ui

clean:
	rm -rf $(VENV) .tunix_rt
