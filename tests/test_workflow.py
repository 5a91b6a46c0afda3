"""The paper grid as a dry run: job counts per rule and the resources each GPU / CPU rule is given."""

import os
import re
import subprocess
from collections import Counter

import pytest
import yaml

from helpers import ROOT, SNAKEMAKE, harness_benchmarks, load_config, paper_config, plan_jobs

GPU_RULES = {"sample", "evaluate_sample", "train", "policy_gap"}
CPU_RULES = {"prepare_problems", "prepare_benchmark", "contamination", "verify", "split_self", "rewrite", "released",
             "evaluate_judge", "report"}


PAPER_LABELS = ["Base", "SFT", "DFT", "DR+SFT", "DR+DFT"]  # the paper's main grid (its Table 1), per model


@pytest.fixture(scope="module")
def paper_jobs(tmp_path_factory):
    os.environ["HF_HUB_OFFLINE"] = "1"  # any download while planning would fail loudly
    return plan_jobs(paper_config(), tmp_path_factory.mktemp("paper"))


@pytest.fixture(scope="module")
def extended_jobs(tmp_path_factory):
    os.environ["HF_HUB_OFFLINE"] = "1"
    return plan_jobs({**paper_config(), "extensions": True}, tmp_path_factory.mktemp("extended"))


def expected_job_counts(cfg: dict, extensions: bool, rounds: int = 1, seeds: int = 1) -> dict[str, int]:
    """Counted from the config independently of the workflow: round 1 trains every planned method, rounds >= 2
    only those on rewritten data (the default `rewrite.round_methods`), each once per seed; base is evaluated
    once."""
    methods = {k: m for k, m in cfg["methods"].items() if extensions or not m.get("extension")}
    models, benches = len(cfg["models"]), len(cfg["benchmarks"])
    trained = [m for m in methods.values() if "data" in m]
    later = [m for m in trained if m["data"] not in ("expert", "released")]  # the released data: the same each round
    runs = (len(trained) + (rounds - 1) * len(later)) * seeds + ("base" in methods)
    ours = [{m["data"] for m in trained} - {"released"}, {m["data"] for m in later}]  # released: its own rule
    variants = len(ours[0]) + (rounds - 1) * len(ours[1])
    shards, eval_shards = cfg["sampling"]["shards"], cfg["evaluation"]["shards"]
    return {
        "prepare_problems": 1, "prepare_benchmark": benches,
        "sample": models * rounds * 2 * shards, "verify": models * rounds * 2 * shards,
        "split_self": models * rounds, "rewrite": models * variants,
        "train": models * (runs - ("base" in methods)), "contamination": 1,
        "released": models * any(m["data"] == "released" for m in trained),
        # one model load per job for all benchmarks (it was one job per benchmark and shard)
        "evaluate_sample": models * runs * eval_shards,
        "evaluate_judge": models * runs, "report": models, "manifest": 1, "all": 1,
        # the policy gap of round 1's rewritten data under the base model (its checkpoints: policy_gap.checkpoints)
        "policy_gap": models if cfg.get("policy_gap", {}).get("enabled", True) else 0,
    }


def grid_counts(jobs, extensions: bool) -> Counter:
    """Jobs per rule of the grid (the hub prefetch stage aside), printed with the plan's total."""
    counts = Counter(job.rule.name for job in jobs)
    print(f"{'with' if extensions else 'without'} extensions: {sum(counts.values())} jobs, {dict(counts)}")
    return Counter({rule: counts[rule] for rule in expected_job_counts(paper_config(), extensions)})


def all_switches_on(rounds: int = 2, seeds: int = 3, **rewrite) -> dict:
    cfg = paper_config()
    cfg["extensions"] = True
    cfg["rewrite"].update(rounds=rounds, **rewrite)
    cfg["training"]["seeds"] = list(range(42, 42 + seeds))
    return cfg


def test_paper_grid_job_counts(paper_jobs):
    counts = grid_counts(paper_jobs, extensions=False)
    assert counts == expected_job_counts(paper_config(), extensions=False)
    assert counts["train"] == 8  # {SFT, DFT, DR+SFT, DR+DFT} x 2 models
    # 2 models x 5 methods x 2 shards; one (benchmark, 4-shard) job each was 2 x 5 x 5 x 4 = 200 model loads
    assert counts["evaluate_sample"] == 20
    assert counts["evaluate_judge"] == 10  # one CPU job per run judges its five benchmarks
    assert sum(counts.values()) == 121


def test_extensions_add_our_methods(extended_jobs):
    counts = grid_counts(extended_jobs, extensions=True)
    assert counts == expected_job_counts(paper_config(), extensions=True)
    # + DR+IS, the self-only / guided-only data ablations and their two extra dataset variants, DR+SFT / DR+DFT
    # on the authors' released data (one `released` dataset per model), and the objectives power, ASFT and PSFT with
    # and without rewriting
    assert (counts["train"], counts["rewrite"], counts["released"], counts["evaluate_sample"],
            sum(counts.values())) == (30, 8, 2, 64, 215)


def test_tables_hold_the_paper_grid_and_our_methods_only_when_switched_on(paper_jobs, extended_jobs):
    def labels(jobs):
        return list(next(job for job in jobs if job.rule.name == "report").params.methods.values())

    assert labels(paper_jobs) == PAPER_LABELS
    assert labels(extended_jobs) == [*PAPER_LABELS, "DR+IS", "DR(self)+DFT", "DR(guided)+DFT",
                                     "DR+SFT (authors' data)", "DR+DFT (authors' data)", "Power (α=0.5)",
                                     "DR+Power (α=0.5)", "ASFT", "DR+ASFT", "PSFT", "DR+PSFT"]
    ours = {m for m, spec in paper_config()["methods"].items() if spec.get("extension")}
    assert ours == {"dr_is", "dr_self_dft", "dr_guided_dft", "mtg_sft", "mtg_dft", "power", "dr_power", "asft",
                    "dr_asft", "psft", "dr_psft"}


def test_one_evaluation_job_samples_every_benchmark(paper_jobs):
    cfg = paper_config()
    job = next(job for job in paper_jobs if job.rule.name == "evaluate_sample" and job.wildcards.run == "base")
    benches = list(cfg["benchmarks"])
    assert list(job.input.benchmarks) == [f"results/benchmarks/{b}.parquet" for b in benches]
    item = job.wildcards.scatteritem
    assert list(job.output) == [f"results/eval/{job.wildcards.model}/base/samples/{item}/{b}.parquet"
                                for b in benches]
    judge = next(job for job in paper_jobs if job.rule.name == "evaluate_judge" and job.wildcards.run != "base")
    shards = cfg["evaluation"]["shards"]
    assert len(judge.input.samples) == shards * len(benches)  # every benchmark, every shard: one CPU job per run
    run = f"results/eval/{judge.wildcards.model}/{judge.wildcards.run}"
    assert re.fullmatch(r"round1/[a-z_]+/seed42", judge.wildcards.run)  # the paper: one round, one seed
    assert sorted(judge.output) == sorted(f"{run}/{b}/{f}" for b in benches for f in ("verdicts.parquet",
                                                                                      "metrics.json"))


def test_a_mistyped_method_key_is_refused(tmp_path):
    cfg = paper_config()
    cfg["methods"]["dr_is"] = {"label": "DR+IS", "data": "rewritten", "loss": "is", "extention": True}
    with pytest.raises(Exception, match="extention"):
        plan_jobs(cfg, tmp_path)


def test_gpu_rules_get_gpus_and_cpu_rules_none(paper_jobs):
    cfg = paper_config()["resources"]
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
    cfg = paper_config()["resources"]
    train = next(job for job in paper_jobs if job.rule.name == "train")
    assert train.resources["runtime"] == cfg["training_runtime_min"]
    # the rule's own resource functions, as Snakemake calls them for each attempt
    runtime, memory = (train.rule.resources[key]._evaluator for key in ("runtime", "mem_mb"))
    # A retried job (profile `retries:`) is resubmitted with a longer time limit and more memory.
    assert runtime(train.wildcards, attempt=3) == 3 * cfg["training_runtime_min"]
    assert memory(train.wildcards, attempt=2) == int(1.5 * cfg["gpu_mem_mb"])


def test_slurm_profile_plans_the_paper_grid_from_the_command_line(paper_jobs):
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["slurm-status-command"] == "squeue"
    assert "gpus" not in str(profile.get("default-resources", {}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([SNAKEMAKE, "-n", "--profile", "profiles/slurm", "--config",
                             f"benchmark_root={harness_benchmarks()}", "--quiet", "rules"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(rf"^total\s+{len(paper_jobs)}$", result.stdout, re.M), result.stdout[-2000:]


def test_demo_config_plans_every_stage(tmp_path):
    cfg = load_config("demo.yaml")
    jobs = plan_jobs(cfg, tmp_path)
    counts = Counter(job.rule.name for job in jobs)
    # round 1: every trained method (the demo runs its extensions too); round 2: DR+DFT only
    # (rewrite.round_methods), sampled by round 1's DR+DFT
    trained = sum("data" in method for method in cfg["methods"].values())
    assert cfg["rewrite"]["rounds"] == 2 and cfg["rewrite"]["round_methods"] == ["dr_dft"]
    assert counts["build_demo_model"] == 1 and counts["train"] == trained + 1 == 6 + 1 and counts["report"] == 1
    # the policy gap of round 1's rewritten data; the demo scores every trained run's checkpoint
    assert counts["policy_gap"] == 1 and counts["policy_gap_checkpoint"] == trained + 1
    assert counts["sample"] == 2 * 2 * cfg["sampling"]["shards"]
    round2 = [job for job in jobs if job.rule.name == "sample" and job.wildcards.round == "2"]
    seed = cfg["training"]["seeds"][0]
    assert {job.params.model for job in round2} == {f"results/demo/checkpoints/tiny/round1/dr_dft/seed{seed}"}
    assert sorted(job.wildcards.round for job in jobs if job.rule.name == "split_self") == ["1", "2"]


def test_all_switches_on_plans(tmp_path):
    """The paper's config with extensions, 2 rounds and 3 seeds: every count follows from the config."""
    counts = grid_counts(plan_jobs(all_switches_on(), tmp_path), extensions=True)
    assert counts == expected_job_counts(paper_config(), extensions=True, rounds=2, seeds=3)
    # round 1: 15 trained methods, round 2: the 8 on data rewritten from our own sampling (not the expert data, not
    # the authors' released data); x 3 seeds x 2 models
    assert counts["train"] == (15 + 8) * 3 * 2 and counts["evaluate_judge"] == 2 * (1 + (15 + 8) * 3)


def test_rounds_start_from_the_previous_checkpoint_when_asked(tmp_path):
    jobs = plan_jobs(all_switches_on(rounds=3, seeds=1, round_init="previous", round_policy="dr_sft"), tmp_path)
    train = {(job.wildcards.model, job.wildcards.round, job.wildcards.method): job for job in jobs
             if job.rule.name == "train"}
    model = next(iter(paper_config()["models"]))
    assert train[(model, "1", "dr_dft")].params.model == paper_config()["models"][model]["path"]
    assert train[(model, "3", "dr_dft")].params.model == f"results/checkpoints/{model}/round2/dr_dft/seed42"
    assert (model, "2", "sft") not in train, "expert-data methods train in round 1 only"
    samplers = {job.params.model for job in jobs if job.rule.name == "sample" and job.wildcards.round == "3"
                and job.wildcards.model == model}
    assert samplers == {f"results/checkpoints/{model}/round2/dr_sft/seed42"}


@pytest.mark.parametrize("rewrite, message", [
    ({"round_policy": "sft"}, "round_policy: 'sft' is not trained in round 2"),
    ({"round_methods": ["dr_dft", "dr_typo"]}, r"round_methods: \['dr_typo'\] are not trained methods"),
])
def test_a_round_setting_that_cannot_be_planned_is_refused(tmp_path, rewrite, message):
    with pytest.raises(Exception, match=message):
        plan_jobs(all_switches_on(rounds=3, seeds=1, **rewrite), tmp_path)


def test_policy_gap_follows_its_switches(tmp_path):
    """The policy gap runs when rewriting does and `policy_gap.enabled`; checkpoints only when switched on, for
    every trained method; the GPU job gets the sampling backend's GPUs and is requeued (it resumes)."""
    cfg = paper_config()
    jobs = plan_jobs({**cfg, "policy_gap": {"checkpoints": True}}, tmp_path / "on")
    gap = [job for job in jobs if job.rule.name == "policy_gap_checkpoint"]
    assert len(gap) == len(cfg["models"]) * sum("data" in m and not m.get("extension")
                                                for m in cfg["methods"].values())
    assert {job.wildcards.run for job in gap} == {f"round1/{m}/seed42" for m, spec in cfg["methods"].items()
                                                  if "data" in spec and not spec.get("extension")}
    assert all(job.resources["gpu"] == 1 and "--requeue" in job.resources["slurm_extra"] for job in gap)
    base = next(job for job in jobs if job.rule.name == "policy_gap")
    assert base.params.backend == "vllm" and base.params.backend_options["batch_size"] == 16
    off = Counter(job.rule.name for job in plan_jobs({**cfg, "policy_gap": {"enabled": False}}, tmp_path / "off"))
    assert off["policy_gap"] == 0 and off["policy_gap_checkpoint"] == 0 and off["train"] == 8
    expert_only = {**cfg, "methods": {m: s for m, s in cfg["methods"].items() if s.get("data", "expert") == "expert"}}
    assert not any(job.rule.name.startswith("policy_gap") for job in plan_jobs(expert_only, tmp_path / "expert"))


def test_workflow_passes_snakemake_lint():
    result = subprocess.run([SNAKEMAKE, "--lint"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr, (
        result.stdout[-3000:])


def test_an_objectives_arguments_reach_the_train_rule_as_a_param(extended_jobs):
    """loss_args are in the train rule's hparams param (Snakemake reruns a job whose params changed): resolved with
    the objective's defaults; IS's come from the shared training keys; objectives without arguments add nothing."""
    import json

    hparams = {job.wildcards.method: json.loads(job.params.hparams) for job in extended_jobs
               if job.rule.name == "train" and job.wildcards.model == "qwen25_math_7b"}
    assert (hparams["dr_power"]["loss"], hparams["dr_power"]["loss_args"]) == ("power", {"alpha": 0.5})
    assert hparams["dr_psft"]["loss_args"] == {"clip_low": 0.2, "clip_high": 0.28}
    assert hparams["dr_asft"]["loss_args"] == {"beta": 0.1}
    assert hparams["dr_is"]["loss_args"] == {"clip": 2.0, "expert_weight": "dft"}
    assert "loss_args" not in hparams["dr_dft"] and "loss_args" not in hparams["sft"]
