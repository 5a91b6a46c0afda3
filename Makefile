# Two commands for a fresh machine: `make demo` and `make test`. Both create the environment first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SNAKEMAKE := $(BIN)/snakemake

.PHONY: install vllm-venv demo experiment rehearsal test test-fast dry-run gpu-check clean-demo

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,cpu,workflow]'
	touch $@

## vllm-venv: .venv-vllm with envs/sampling.yaml's pip list (real vLLM 0.33, CUDA torch: ~10 GB, no GPU needed),
## for tests/test_vllm_contract.py; built once (the marker); a changed env file or pyproject updates it in place
VLLM_VENV := .venv-vllm
vllm-venv: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed: envs/sampling.yaml pyproject.toml | install
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BIN)/python envs/pip_requirements.py envs/sampling.yaml > $(VLLM_VENV)/sampling-requirements.txt
	MINDTHEGAP_ROOT=$(CURDIR) $(VLLM_VENV)/bin/python -m pip install --quiet -r $(VLLM_VENV)/sampling-requirements.txt
	$(VLLM_VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $@

## demo: the whole DAG on this machine with the tiny model; prints the results table
demo: install
	$(SNAKEMAKE) --profile profiles/local --configfile config/demo.yaml
	@cat results/demo/tables/tiny.md
	@for f in results/demo/datasets/tiny/round*/rewritten.stats.json; do echo "$$f sources:" && $(BIN)/python -c "import json,sys; print(json.load(open(sys.argv[1]))['sources'])" $$f; done

## experiment: the demo's miniature under 3 seeds (config/experiment.yaml over config/demo.yaml; EXPERIMENT_ARGS, e.g.
## "--seeds 5"): accuracy with intervals, the paper's comparisons, the policy gap and weight variance per source
## (results/experiment/table.md, summary.json, accuracy.png; 10 min on 2 cores)
experiment: install
	$(BIN)/python -m mindthegap.experiment $(EXPERIMENT_ARGS)

## test: the whole test suite (the SLURM tests start a local cluster; they need root)
test: install
	$(BIN)/python -m pytest -ra

## test-fast: everything but the end-to-end and SLURM runs
test-fast: install
	$(BIN)/python -m pytest -ra -m "not slow and not slurm"

## gpu-check: on one GPU (a few minutes): bf16 sampling, teacher-forced scoring, 20 steps of each loss, evaluation;
## prints tokens/s and step times (GPU_CHECK_ARGS="--device cpu" runs it on the CPU)
gpu-check: install
	$(BIN)/python -m mindthegap.gpu_check $(GPU_CHECK_ARGS)

## dry-run: plan the paper's grid for SLURM without running anything
dry-run: install
	$(SNAKEMAKE) -n --profile profiles/slurm

## rehearsal: the paper's own config (config/config.yaml) end to end on this machine, changing only what cannot
## exist here: tiny random models with the real Qwen2.5-Math / Llama-3.1 tokenizers, a local NuminaMath-CoT stand-in
## laid out like the hub's, a few problems of the real benchmarks (../shared), the transformers backend
rehearsal: install
	$(BIN)/python -m mindthegap.rehearsal $(REHEARSAL_ARGS)
	@cat results/rehearsal/tables/*.md

clean-demo:
	rm -rf results/demo
