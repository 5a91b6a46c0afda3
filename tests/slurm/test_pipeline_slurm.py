"""The demo workflow through `--profile` (a test variant of profiles/slurm) on the local SLURM cluster.

A smaller variant of config/demo.yaml (fewer problems, three methods, a shorter pre-training) keeps the run to a
few minutes while every rule kind still runs: each non-local job must go through sbatch, the GPU rules must be given
(fake) GPUs and the CPU rules none, resumable rules only must be requeueable, and every output must have the same
content as a local run of the same variant.

The fault test then reruns one training with more steps, requeues its SLURM job (`scontrol requeue`, what a
preemption does) once a checkpoint exists, and checks that the workflow completes and that training resumed from
that checkpoint instead of restarting.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from slurm_helpers import (
    REPO,
    SNAKEMAKE,
    run_snakemake,
    sbatch_args,
    sbatch_calls,
    sbatch_calls_by_rule,
    slurm_job,
    slurm_jobs,
    squeue_jobs,
    submitted_jobs,
    write_ci_profile,
)

MODEL = "tiny"
FAULT_METHOD = "dr_is"
SEED = 42  # the training seed of config/demo.yaml
GPU_RULES = {"sample", "evaluate_sample", "train", "policy_gap", "policy_gap_checkpoint"}
CPU_RULES = {"build_demo_model", "prepare_problems", "prepare_benchmark", "contamination", "verify", "rewrite",
             "evaluate_judge"}
LOCAL_RULES = {"split_self", "report", "evaluation_table", "source_table", "figure_accuracy", "figure_pass_at_k",
               "figure_sources", "figure_policy_gap", "figure_training", "manifest", "all"}
RESUMABLE_RULES = GPU_RULES


def variant_config() -> dict:
    """config/demo.yaml, smaller: every rule kind runs, two shards per sampling and evaluation rule (array jobs)."""
    cfg = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    cfg["results_dir"] = "results/slurm-variant"
    cfg["demo_model"].update(steps=40, corpus_size=2000)
    cfg["problems"]["n"] = 32
    next(iter(cfg["benchmarks"].values()))["n"] = 16
    cfg["methods"] = {m: cfg["methods"][m] for m in ("base", "dr_is")}  # rewritten data, IS loss
    cfg["rewrite"].update(rounds=1, round_methods=[])  # every rule kind runs in round 1
    for phase in ("self", "guided"):
        cfg["sampling"][phase].update(n=2, max_new_tokens=48)
    cfg["sampling"]["shards"] = 2
    cfg["evaluation"].update(n=2, shards=2, max_new_tokens=48)
    cfg["training"]["epochs"] = 1
    return cfg


def write_config(directory: Path, cfg: dict) -> Path:
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def workflow_args(workdir: Path, config_file: Path, *targets: str) -> list[str]:
    # targets first: --configfile takes every argument after it
    return [*targets, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(config_file)]


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The variant with the local profile (the reference outputs)."""
    base = tmp_path_factory.mktemp("local")
    cfg = variant_config()
    config_file = write_config(base, cfg)
    work = base / "work"
    t0 = time.monotonic()
    res = run_snakemake(base, REPO / "profiles" / "local", *workflow_args(work, config_file), timeout=900)
    wall = time.monotonic() - t0
    print(f"\nlocal run of the variant: {wall:.1f} s")
    assert res.returncode == 0, f"local run failed ({res.returncode}):\n{res.stdout[-6000:]}"
    return work / cfg["results_dir"]


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, tmp_path_factory):
    """The variant with the CI variant of profiles/slurm; returns a dict with what the tests look at."""
    base = tmp_path_factory.mktemp("slurm")
    cfg = variant_config()
    config_file = write_config(base, cfg)
    work = base / "work"
    profile = write_ci_profile(base / "profile", slurm_logdir=str(base / "slurm-logs"))
    t0 = time.monotonic()
    res = run_snakemake(base, profile, *workflow_args(work, config_file), timeout=900)
    wall = time.monotonic() - t0
    print(f"\nSLURM run of the variant: {wall:.1f} s (cluster start: {slurm_cluster['start_output'].strip()})")
    assert res.returncode == 0, f"SLURM run failed ({res.returncode}) after {wall:.0f} s:\n{res.stdout[-8000:]}"
    return {"base": base, "work": work, "results": work / cfg["results_dir"], "result": res, "wall": wall,
            "config": cfg, "config_file": config_file, "profile": profile}


def job_environment(log_file: Path) -> dict[str, str]:
    """The `job environment:` line that mindthegap.runtime.setup_logging writes first into every job's log."""
    lines = [ln for ln in log_file.read_text(errors="replace").splitlines() if "job environment:" in ln]
    assert lines, f"no job environment line in {log_file}"
    return dict(re.findall(r"(\w+)=(\S*)", lines[-1].split("job environment:", 1)[1]))


# --------------------------------------------------------------------------------------------------------------------
# the integration test


def test_every_job_went_through_sbatch(slurm_run):
    res = slurm_run["result"]
    by_rule = sbatch_calls_by_rule(res)
    assert set(by_rule) == GPU_RULES | CPU_RULES, sorted(by_rule)
    # array jobs: sample (self, guided) and evaluate_sample (per method) submit their two shards in one sbatch
    for rule in ("sample", "evaluate_sample"):
        arrays = [c for c in by_rule[rule] if re.search(r"--array[= ]", c)]
        assert arrays, f"{rule}: no array job among {by_rule[rule]}"
    # what slurmctld and squeue saw: every job of the run, on the expected partition, completed
    run_uuid = sbatch_args(sbatch_calls(res)[0])[sbatch_args(sbatch_calls(res)[0]).index("--job-name") + 1]
    deadline = time.monotonic() + 30
    while True:  # a job whose epilog still runs shows COMPLETING for a moment after Snakemake saw it succeed
        seen = squeue_jobs(name=run_uuid)
        unfinished = [j for j in seen if j["State"] != "COMPLETED"]
        if not unfinished or time.monotonic() > deadline:
            break
        time.sleep(2)
    rules_seen = {re.sub(r"^rule_", "", j["Comment"]).split("_wildcards_")[0] for j in seen}
    assert rules_seen == GPU_RULES | CPU_RULES, rules_seen
    assert not unfinished, unfinished
    for job in seen:
        rule = re.sub(r"^rule_", "", job["Comment"]).split("_wildcards_")[0]
        assert job["Partition"] == ("gpu" if rule in GPU_RULES else "cpu"), job
    # the local rules ran here: their logs exist but they were never submitted
    results = slurm_run["results"]
    assert (results / "tables" / f"{MODEL}.md").exists()
    assert not LOCAL_RULES & set(by_rule)
    # the plugin wrote a SLURM log per job into the profile's slurm-logdir
    logs = list((slurm_run["base"] / "slurm-logs").rglob("*.log"))
    assert {p.parts[len((slurm_run["base"] / "slurm-logs").parts)] for p in logs} >= {
        f"rule_{r}" for r in GPU_RULES | CPU_RULES}


def test_gpu_rules_were_given_gpus_and_cpu_rules_none(slurm_run):
    results = slurm_run["results"]
    envs = {}
    for rule in GPU_RULES | CPU_RULES:
        files = sorted((results / "logs" / rule).rglob("*.log"))
        assert files, f"no log of rule {rule}"
        envs[rule] = [job_environment(f) for f in files]
    for rule, jobs in envs.items():
        for env in jobs:
            assert env.get("SLURM_JOB_ID"), f"{rule} did not run inside a SLURM job: {env}"
            if rule in GPU_RULES:
                assert env.get("CUDA_VISIBLE_DEVICES"), f"GPU rule {rule} got no GPU: {env}"
            else:
                assert not env.get("CUDA_VISIBLE_DEVICES"), f"CPU rule {rule} got a GPU: {env}"
    for rule, calls in sbatch_calls_by_rule(slurm_run["result"]).items():
        for call in calls:
            args = sbatch_args(call)
            if rule in GPU_RULES:
                assert "--gpus=1" in args and args[args.index("-p") + 1] == "gpu", call
                assert not any(a.startswith(("--ntasks-per-gpu", "--gres")) for a in args), call
            else:
                assert not any(a.startswith(("--gpus", "--gres")) for a in args), call
                assert args[args.index("-p") + 1] == "cpu", call
    by_rule = sbatch_calls_by_rule(slurm_run["result"])
    print("\nsbatch (GPU job, train):", by_rule["train"][0])
    print("sbatch (GPU array job, sample):", next(c for c in by_rule["sample"] if "--array" in c))
    print("sbatch (CPU job, verify):", by_rule["verify"][0])


def test_only_resumable_rules_requeue(slurm_run):
    by_rule = sbatch_calls_by_rule(slurm_run["result"])
    for rule, calls in by_rule.items():
        for call in calls:
            args = sbatch_args(call)
            flags = [a for a in args if a in ("--requeue", "--no-requeue")]
            assert flags == (["--requeue"] if rule in RESUMABLE_RULES else ["--no-requeue"]), (rule, call)
    # slurmctld agrees: Requeue=1 for resumable jobs only
    ids = {str(v).split("_")[0] for v in submitted_jobs(slurm_run["result"]).values()}
    for job in slurm_jobs():
        if job.get("JobId", "").split("_")[0] not in ids and job.get("ArrayJobId") not in ids:
            continue
        rule = re.sub(r"^rule_", "", job.get("Comment", "")).split("_wildcards_")[0]
        assert job.get("Requeue") == ("1" if rule in RESUMABLE_RULES else "0"), (rule, job.get("Requeue"))


# outputs whose content may differ between two runs: timings, logs, and the Trainer's speed figures
VOLATILE_DIRS = {"logs", "timings", "work"}
VOLATILE_KEYS = re.compile(r"runtime|per_second|time|date|host|created", re.I)


def _strip_volatile(value):
    if isinstance(value, dict):
        return {k: _strip_volatile(v) for k, v in value.items() if not VOLATILE_KEYS.search(k)}
    if isinstance(value, list):
        return [_strip_volatile(v) for v in value]
    return value


def _files(root: Path) -> dict[str, Path]:
    out = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if path.is_file() and rel.parts[0] not in VOLATILE_DIRS:
            out[str(rel)] = path
    return out


def test_outputs_are_identical_to_the_local_run(slurm_run, local_run):
    local, remote = _files(local_run), _files(slurm_run["results"])
    assert sorted(local) == sorted(remote)
    benchmarks = {p.name for p in (local_run / "benchmarks").glob("*.parquet")}
    different = []
    for rel, path in sorted(local.items()):
        other = remote[rel]
        if path.suffix == ".parquet":
            a, b = pd.read_parquet(path), pd.read_parquet(other)
            try:
                pd.testing.assert_frame_equal(a, b, check_exact=True)
            except AssertionError as e:
                different.append(f"{rel}: {str(e)[:300]}")
        elif path.suffix == ".json":
            if _strip_volatile(json.loads(path.read_text())) != _strip_volatile(json.loads(other.read_text())):
                different.append(rel)
        elif path.read_bytes() != other.read_bytes():
            different.append(rel)
    assert not different, "outputs differ from the local run:\n" + "\n".join(different)
    assert benchmarks and any(rel.endswith("model.safetensors") for rel in local), sorted(local)


# --------------------------------------------------------------------------------------------------------------------
# the fault test: requeue a running training job


def _train_jobs(run_uuid: str | None = None) -> list[dict[str, str]]:
    return [j for j in squeue_jobs(name=run_uuid) if j["Comment"].startswith("rule_train")]


def test_requeued_training_resumes_from_its_checkpoint(slurm_run, tmp_path):
    # rerun one training, with more steps and frequent checkpoints, in a copy of the finished SLURM run
    work = tmp_path / "work"
    shutil.copytree(slurm_run["work"], work, symlinks=True)
    cfg = copy.deepcopy(slurm_run["config"])
    cfg["training"].update(epochs=40, save_steps=5, logging_steps=1)  # 2 steps per epoch: 80 steps
    config_file = write_config(tmp_path, cfg)
    results = work / cfg["results_dir"]
    target = f"{cfg['results_dir']}/checkpoints/{MODEL}/round1/{FAULT_METHOD}/seed{SEED}"
    work_dir = results / "work" / "checkpoints" / MODEL / "round1" / FAULT_METHOD / f"seed{SEED}"
    profile = write_ci_profile(tmp_path / "profile", slurm_logdir=str(tmp_path / "slurm-logs"))
    cmd = ["timeout", "-s", "KILL", "600", SNAKEMAKE, "--profile", str(profile),
           *workflow_args(work, config_file, target)]
    t0 = time.monotonic()
    log_path = tmp_path / "snakemake.out"
    with open(log_path, "w") as out:
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            job_id, checkpoint = None, None
            while time.monotonic() - t0 < 300 and proc.poll() is None:
                ids = submitted_jobs(log_path.read_text(errors="replace"))
                if ids and job_id is None:
                    job_id = str(next(iter(ids.values())))
                done = [c for c in work_dir.glob("checkpoint-*") if (c / "trainer_state.json").exists()]
                if job_id and done:
                    checkpoint = max(done, key=lambda c: int(c.name.split("-")[1])).name
                    break
                time.sleep(0.2)
            assert job_id and checkpoint, f"no checkpoint of the training job appeared:\n{log_path.read_text()}"
            requeue = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True, timeout=30)
            t_requeue = time.monotonic() - t0
            assert requeue.returncode == 0, requeue.stderr
            # slurmctld holds a requeued batch job for ~120 s (Reason=BeginTime) once its old run has ended; let it
            # start at once to keep CI short (an admin's `scontrol update`; nothing else about the job changes)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                job = slurm_job(job_id)
                if job.get("JobState") == "PENDING" and job.get("Reason") == "BeginTime":
                    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], capture_output=True,
                                   timeout=30, check=False)
                    break
                time.sleep(0.5)
            rc = proc.wait(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
    wall = time.monotonic() - t0
    out = log_path.read_text(errors="replace")
    print(f"\nfault test: requeued SLURM job {job_id} at {t_requeue:.1f} s (after {checkpoint}); workflow done "
          f"in {wall:.1f} s")
    assert rc == 0, f"snakemake exited {rc}:\n{out[-8000:]}"

    # SLURM requeued the job (one restart), Snakemake did not resubmit it
    assert list(submitted_jobs(out).values()) == [int(job_id)], submitted_jobs(out)
    job = slurm_job(job_id)
    assert job.get("Restarts") == "1" and job.get("JobState") == "COMPLETED", job
    # the job resumed from a checkpoint at or after the one seen before the requeue, and finished the schedule
    published = results / "checkpoints" / MODEL / "round1" / FAULT_METHOD / f"seed{SEED}"
    summary = json.loads((published / "training_log.json").read_text())["summary"]
    resumed = summary["resumed_from"]
    assert resumed and int(resumed.rsplit("-", 1)[1]) >= int(checkpoint.split("-")[1]), summary
    assert summary["global_steps"] == 80, summary
    log = (results / "logs" / "train" / MODEL / "round1" / FAULT_METHOD / f"seed{SEED}.log").read_text()
    assert "resuming training from" in log, log[-3000:]
    # the rule's log is that of the restarted job (Snakemake truncates it when the job starts again)
    assert f"SLURM_JOB_ID={job_id}" in log and "CUDA_VISIBLE_DEVICES=0" in log, log[:500]
    assert not work_dir.exists(), "the work directory is removed once the model is published"
