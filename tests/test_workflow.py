"""The paper grid as a dry run: job counts per rule and the resources each GPU / CPU rule is given."""

import os
import re
import subprocess
from collections import Counter

import pytest
import yaml

from helpers import ROOT, SNAKEMAKE, load_config, plan_jobs

GPU_RULES = {"sample", "evaluate_sample", "train"}
CPU_RULES = {"prepare_problems", "prepare_benchmark", "verify", "split_self", "rewrite", "evaluate_judge", "report"}


@pytest.fixture(scope="module")
def paper_jobs(tmp_path_factory):
    os.environ["HF_HUB_OFFLINE"] = "1"  # any download while planning would fail loudly
    return plan_jobs(load_config("config.yaml"), tmp_path_factory.mktemp("paper"))


def test_paper_grid_job_counts(paper_jobs):
    cfg = load_config("config.yaml")
    models, benches = len(cfg["models"]), len(cfg["benchmarks"])
    methods = len(cfg["methods"])
    trained = sum("data" in m for m in cfg["methods"].values())
    variants = len({m["data"] for m in cfg["methods"].values() if "data" in m})
    shards, eval_shards = cfg["sampling"]["shards"], cfg["evaluation"]["shards"]
    expected = {
        "prepare_problems": 1, "prepare_benchmark": benches,
        "sample": models * 2 * shards, "verify": models * 2 * shards, "split_self": models,
        "rewrite": models * variants, "train": models * trained,
        "evaluate_sample": models * methods * benches * eval_shards,
        "evaluate_judge": models * methods * benches, "report": models, "manifest": 1, "all": 1,
    }
    assert Counter(job.rule.name for job in paper_jobs) == expected
    assert sum(expected.values()) == 390  # 2 models x 6 methods x 5 benchmarks, 8 sampling / 4 eval shards


def test_gpu_rules_get_gpus_and_cpu_rules_none(paper_jobs):
    cfg = load_config("config.yaml")["resources"]
    seen = set()
    for job in paper_jobs:
        resources, rule = job.resources, job.rule.name
        if rule in GPU_RULES:
            expected = cfg["training_gpus"] if rule == "train" else 1
            assert resources.get("gpu") == expected, rule
            assert resources.get("slurm_partition") == cfg["gpu_partition"], rule
            assert resources.get("tasks_per_gpu") == 0, f"{rule}: must not start once per GPU"
            assert "gpus" not in resources and "gres" not in resources  # trap 1: gpus= requests nothing
        elif rule in CPU_RULES:
            assert not resources.get("gpu"), rule
            assert resources.get("slurm_partition", cfg["cpu_partition"]) == cfg["cpu_partition"], rule
        seen.add(rule)
    assert GPU_RULES <= seen


def test_runtime_and_memory_scale_with_the_attempt(paper_jobs):
    cfg = load_config("config.yaml")["resources"]
    train = next(job for job in paper_jobs if job.rule.name == "train")
    assert train.resources["runtime"] == cfg["training_runtime_min"]
    # the rule's own resource functions, as Snakemake calls them for each attempt
    runtime, memory = (train.rule.resources[key]._evaluator for key in ("runtime", "mem_mb"))
    # A retried job (profile `retries:`) is resubmitted with a longer time limit and more memory.
    assert runtime(train.wildcards, attempt=3) == 3 * cfg["training_runtime_min"]
    assert memory(train.wildcards, attempt=2) == int(1.5 * cfg["gpu_mem_mb"])


def test_slurm_profile_plans_the_paper_grid_from_the_command_line(tmp_path):
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["slurm-status-command"] == "squeue"
    assert "gpus" not in str(profile.get("default-resources", {}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([SNAKEMAKE, "-n", "--profile", "profiles/slurm", "--quiet",
                             "rules"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(r"^total\s+390$", result.stdout, re.M), result.stdout[-2000:]


def test_demo_config_plans_every_stage(tmp_path):
    counts = Counter(job.rule.name for job in plan_jobs(load_config("demo.yaml"), tmp_path))
    assert counts["build_demo_model"] == 1 and counts["train"] == 5 and counts["report"] == 1
    assert counts["sample"] == 2 * load_config("demo.yaml")["sampling"]["shards"]


def test_workflow_passes_snakemake_lint():
    result = subprocess.run([SNAKEMAKE, "--lint"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr, (
        result.stdout[-3000:])
