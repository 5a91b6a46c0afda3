# Two commands for a fresh machine: `make demo` and `make test`. Both create the environment first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SNAKEMAKE := $(BIN)/snakemake

.PHONY: install demo test test-fast dry-run clean-demo

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

## demo: the whole DAG on this machine with the tiny model; prints the results table
demo: install
	$(SNAKEMAKE) --profile profiles/local --configfile config/demo.yaml
	@cat results/demo/tables/tiny.md
	@echo "rewritten dataset sources:" && cat results/demo/datasets/tiny/rewritten.stats.json | $(BIN)/python -c "import json,sys; print(json.load(sys.stdin)['sources'])"

## test: the whole test suite (the SLURM tests start a local cluster; they need root)
test: install
	$(BIN)/python -m pytest -ra

## test-fast: everything but the end-to-end and SLURM runs
test-fast: install
	$(BIN)/python -m pytest -ra -m "not slow and not slurm"

## dry-run: plan the paper's grid for SLURM without running anything
dry-run: install
	$(SNAKEMAKE) -n --profile profiles/slurm

clean-demo:
	rm -rf results/demo
