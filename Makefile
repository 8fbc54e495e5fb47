# Two commands on a fresh machine:
#   make run    set up .venv, then a short search on the default dataset (churn), results in runs/<time>/
#   make test   set up .venv, then the whole test suite (host and every first-party plugin)
# Set-up is idempotent and re-runs only when a pyproject.toml or constraints.txt changes.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml))
STAMP  := $(VENV)/.installed

PEERS_STAMP := .venv-peers/.installed

.PHONY: setup run test bench bench-peers clean

$(STAMP): pyproject.toml constraints.txt $(wildcard plugins/*/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: an unpinned torch pulls several GB of CUDA wheels on a machine without a GPU
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]' \
		$(foreach p,$(PLUGIN_DIRS),-e $(p))
	touch $@

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/automl

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/report.py

# The peers (AutoGluon, FLAML, LightGBM + Optuna, logistic regression) in their own environment, never .venv
$(PEERS_STAMP): benchmarks/requirements-peers.txt | $(STAMP)
	$(BIN)/python benchmarks/peers.py --install
	touch $@

bench-peers: $(STAMP) $(PEERS_STAMP)
	$(BIN)/python benchmarks/peers.py $(PEERS_ARGS)
	$(BIN)/python benchmarks/report.py

clean:
	rm -rf $(VENV) .venv-peers runs outputs multirun
