"""Smoke test: a two-rule workflow (one fake-GPU rule, one CPU rule) through the SLURM executor plugin."""

from __future__ import annotations

import time
from pathlib import Path

from slurm_helpers import (
    run_snakemake,
    sbatch_args,
    sbatch_calls,
    sbatch_calls_by_rule,
    slurm_jobs,
    squeue_jobs,
    submitted_jobs,
    write_slurm_profile,
)

SNAKEFILE = r"""
localrules: all

rule all:
    input: "gpu.txt", "cpu.txt"

# `tasks_per_gpu: 0`: never `tasks` on a GPU rule (it becomes --ntasks-per-gpu and starts the program per GPU)
rule gpu:
    output: "gpu.txt"
    resources:
        gpu=1,
        tasks_per_gpu=0,
        slurm_partition="gpu",
        mem_mb=200,
        runtime=5,
    shell:
        'echo "CUDA_VISIBLE_DEVICES=${{CUDA_VISIBLE_DEVICES-}}" > {output}; '
        'echo "SLURM_JOB_ID=${{SLURM_JOB_ID-}}" >> {output}'

rule cpu:
    output: "cpu.txt"
    resources:
        mem_mb=200,
        runtime=5,
    shell:
        'echo "CUDA_VISIBLE_DEVICES=${{CUDA_VISIBLE_DEVICES-}}" > {output}; '
        'echo "SLURM_JOB_ID=${{SLURM_JOB_ID-}}" >> {output}'
"""


def _read_env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_gpu_and_cpu_rules_run_through_sbatch(slurm_cluster, tmp_path):
    work = tmp_path / "wf"
    work.mkdir()
    (work / "Snakefile").write_text(SNAKEFILE)
    profile = write_slurm_profile(tmp_path / "profile", jobs=2)

    t0 = time.monotonic()
    res = run_snakemake(work, profile, timeout=240)
    wall = time.monotonic() - t0
    print(f"\nsmoke workflow wall time: {wall:.1f} s")
    assert res.returncode == 0, f"snakemake exited {res.returncode} after {wall:.0f} s:\n{res.stdout[-6000:]}"

    # both outputs, written inside SLURM jobs
    gpu = _read_env_file(work / "gpu.txt")
    cpu = _read_env_file(work / "cpu.txt")
    assert gpu["SLURM_JOB_ID"] and cpu["SLURM_JOB_ID"], (gpu, cpu)
    assert gpu["SLURM_JOB_ID"] != cpu["SLURM_JOB_ID"]
    # the fake GPU is visible to the GPU job only
    assert gpu["CUDA_VISIBLE_DEVICES"] != "", gpu
    assert cpu["CUDA_VISIBLE_DEVICES"] == "", cpu

    # the plugin went through sbatch, once per rule, with the expected flags
    by_rule = sbatch_calls_by_rule(res)
    assert set(by_rule) == {"gpu", "cpu"}, sbatch_calls(res)
    assert len(by_rule["gpu"]) == len(by_rule["cpu"]) == 1
    gpu_args = sbatch_args(by_rule["gpu"][0])
    cpu_args = sbatch_args(by_rule["cpu"][0])
    print("sbatch (gpu):", by_rule["gpu"][0])
    print("sbatch (cpu):", by_rule["cpu"][0])
    assert "--gpus=1" in gpu_args and gpu_args[gpu_args.index("-p") + 1] == "gpu"
    assert cpu_args[cpu_args.index("-p") + 1] == "cpu"
    assert not any(a.startswith("--ntasks-per-gpu") for a in gpu_args)
    assert not any(a.startswith(("--gpus", "--gres")) for a in cpu_args)
    # the same calls are in snakemake's own log file (.snakemake/log)
    assert sorted(sbatch_calls(work)) == sorted(sbatch_calls(res))

    # the plugin's per-rule SLURM logs exist
    slurm_logs = work / ".snakemake" / "slurm_logs"
    for rule in ("gpu", "cpu"):
        logs = list((slurm_logs / f"rule_{rule}").rglob("*.log"))
        assert logs, f"no SLURM log for rule {rule} under {slurm_logs}"

    # slurmctld knows both jobs, in the right partitions, completed
    ids = {int(gpu["SLURM_JOB_ID"]), int(cpu["SLURM_JOB_ID"])}
    assert set(submitted_jobs(res).values()) == ids
    jobs = {int(j["JobId"]): j for j in slurm_jobs(ids)}
    assert set(jobs) == ids
    assert jobs[int(gpu["SLURM_JOB_ID"])]["Partition"] == "gpu"
    assert jobs[int(cpu["SLURM_JOB_ID"])]["Partition"] == "cpu"
    assert all(j["JobState"] == "COMPLETED" for j in jobs.values()), jobs
    run_uuid = gpu_args[gpu_args.index("--job-name") + 1]
    seen = {int(j["JobID"]): j for j in squeue_jobs(name=run_uuid)}
    assert set(seen) == ids, seen
    assert {j["Comment"] for j in seen.values()} == {"rule_gpu", "rule_cpu"}
    assert "gpu:1" in seen[int(gpu["SLURM_JOB_ID"])]["TresPerJob"]
    assert "gpu" not in seen[int(cpu["SLURM_JOB_ID"])]["TresPerJob"]
