# Plexus: `make devnet` runs the main job, `make test` runs the tests. Both set up .venv on their own.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEVNET_DIR ?= .devnet
SCENARIOS ?= devnet/scenarios/default.toml devnet/scenarios/rank_short.toml devnet/scenarios/pader_short.toml devnet/scenarios/spsa_short.toml devnet/scenarios/gauntlet_short.toml

.PHONY: venv test test-fast devnet bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel "setuptools<81"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

test: venv
	$(PY) -m pytest -q -p no:cacheprovider tests

test-fast: venv
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow and not devnet" tests

devnet: venv
	@for s in $(SCENARIOS); do \
	  name=$$(basename $$s .toml); \
	  $(VENV)/bin/plexus devnet run $$s --dir $(DEVNET_DIR)/$$name || exit 1; \
	done

bench: venv
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(DEVNET_DIR) build *.egg-info
