"""Helpers for the tests against the local SLURM cluster (tests/slurm/cluster.sh).

Kept out of conftest.py so tests can import them by a unique module name (``from slurm_helpers import ...``);
conftest.py puts this directory on sys.path.

* ``write_slurm_profile(dir, **overrides)``: a Snakemake profile for the local cluster.
* ``run_snakemake(workdir, profile, *args)``: runs the venv's snakemake under ``timeout -s KILL``.
* ``sbatch_calls(source)``: the sbatch command lines the plugin issued (needs ``--verbose``, set by the profile).
* ``sbatch_calls_by_rule(source)``, ``sbatch_args(call)``, ``sbatch_comment(call)``.
* ``submitted_jobs(source)``: ``{snakemake_jobid: slurm_jobid}`` from the plugin's info lines.
* ``slurm_jobs(job_ids=None, name=None)``: jobs known to slurmctld (``scontrol show job -o``), as dicts.
* ``squeue_jobs(name=None)``: jobs seen by ``squeue`` (finished ones stay visible for MinJobAge=600 s).

``source`` is a ``subprocess.CompletedProcess`` from ``run_snakemake``, a string, a log file, or a workdir (then its
``.snakemake/log/*.snakemake.log`` files are read).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
_VENV_SNAKEMAKE = HERE.parents[1] / ".venv" / "bin" / "snakemake"
_SIBLING_SNAKEMAKE = Path(sys.executable).with_name("snakemake")
SNAKEMAKE = str(_SIBLING_SNAKEMAKE if _SIBLING_SNAKEMAKE.exists() else _VENV_SNAKEMAKE)


# --------------------------------------------------------------------------------------------------------------------
# running snakemake against the cluster

DEFAULT_PROFILE = {
    "executor": "slurm",
    "jobs": 2,
    "latency-wait": 5,
    "slurm-status-command": "squeue",  # no slurmdbd: sacct has no data and snakemake would wait forever
    # must stay <= MinJobAge/3 (600/3): above it the plugin silently goes back to sacct
    "slurm-init-seconds-before-status-checks": 2,
    "seconds-between-status-checks": 2,
    "default-resources": {"mem_mb": 200, "runtime": 10},
    "slurm-keep-successful-logs": True,  # else the plugin deletes the logs of successful jobs
    "printshellcmds": True,
    "verbose": True,  # the plugin logs its sbatch calls at debug level only
}


def write_slurm_profile(directory: Path, **overrides) -> Path:
    """Write ``config.yaml`` for the local cluster into ``directory``; keyword names use ``_`` for ``-``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    profile = dict(DEFAULT_PROFILE)
    profile.update({k.replace("_", "-"): v for k, v in overrides.items()})
    (directory / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return directory


def run_snakemake(
    workdir: Path, profile: Path | None, *args: str, timeout: int = 300, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir`` with ``--profile profile``; killed (SIGKILL) after ``timeout`` s.

    Snakemake can hang on a status query and ignore SIGTERM, hence ``timeout -s KILL``. stdout and stderr are merged
    into ``.stdout``; the exit code 137 means it was killed.
    """
    cmd = ["timeout", "-s", "KILL", str(timeout), SNAKEMAKE]
    if profile is not None:
        cmd += ["--profile", str(profile)]
    cmd += list(args)
    full_env = dict(os.environ)
    full_env.pop("SLURM_CONF", None)  # the config must be found at /etc/slurm (the jobstep plugin strips it)
    full_env.update(env or {})
    return subprocess.run(
        cmd,
        cwd=workdir,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
        timeout=timeout + 30,
    )


# --------------------------------------------------------------------------------------------------------------------
# what the plugin submitted

_SBATCH_CALL = re.compile(r"^.*?sbatch call: (sbatch .*)$")
_SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+)")


def _log_text(source: str | Path | subprocess.CompletedProcess) -> str:
    """Text of a snakemake run: a CompletedProcess, a string, a log file or a workdir (all .snakemake/log files)."""
    if isinstance(source, subprocess.CompletedProcess):
        return source.stdout or ""
    if isinstance(source, Path):
        if source.is_dir():
            logs = sorted((source / ".snakemake" / "log").glob("*.snakemake.log"))
            return "\n".join(p.read_text(errors="replace") for p in logs)
        return source.read_text(errors="replace")
    return source


def sbatch_calls(source: str | Path | subprocess.CompletedProcess) -> list[str]:
    """The sbatch command lines the plugin issued, in order.

    The plugin logs ``sbatch call: sbatch ...`` at debug level: run snakemake with ``--verbose`` (the default profile
    sets it). Works on snakemake's output and on the ``.snakemake/log/*.snakemake.log`` files of a workdir. With
    ``--wrap`` (the default) the wrapped command is on the same line; with ``slurm-pass-command-as-script`` the
    script follows separately.
    """
    calls = []
    for line in _log_text(source).splitlines():
        m = _SBATCH_CALL.match(line)
        if m:
            calls.append(m.group(1).rstrip())
    return calls


def sbatch_args(call: str) -> list[str]:
    """An sbatch call split into arguments (shell quoting undone)."""
    return shlex.split(call)


def sbatch_comment(call: str) -> str | None:
    """The ``--comment`` of an sbatch call: ``rule_<name>`` or ``rule_<name>_wildcards_<wc>``."""
    args = sbatch_args(call)
    for i, a in enumerate(args):
        if a == "--comment" and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--comment="):
            return a.split("=", 1)[1]
    return None


def sbatch_calls_by_rule(source: str | Path | subprocess.CompletedProcess) -> dict[str, list[str]]:
    """sbatch calls grouped by rule name (taken from the ``--comment rule_<name>...``)."""
    out: dict[str, list[str]] = {}
    for call in sbatch_calls(source):
        comment = sbatch_comment(call) or ""
        rule = re.sub(r"^rule_", "", comment).split("_wildcards_")[0]
        out.setdefault(rule, []).append(call)
    return out


def submitted_jobs(source: str | Path | subprocess.CompletedProcess) -> dict[int, int]:
    """``{snakemake job id: SLURM job id}`` from the plugin's info lines (no ``--verbose`` needed)."""
    return {int(a): int(b) for a, b in _SUBMITTED.findall(_log_text(source))}


# --------------------------------------------------------------------------------------------------------------------
# what slurmctld knows

_SCONTROL_KEY = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_:/]*)=")


def _parse_scontrol_line(line: str) -> dict[str, str]:
    """``Key=Value Key2=Value with spaces`` -> dict (values run until the next ``Key=``)."""
    fields: dict[str, str] = {}
    matches = list(_SCONTROL_KEY.finditer(line))
    for m, nxt in zip(matches, matches[1:] + [None]):
        end = nxt.start() if nxt else len(line)
        fields[m.group(1)] = line[m.end() : end].strip()
    return fields


def slurm_jobs(job_ids=None, name: str | None = None) -> list[dict[str, str]]:
    """Jobs known to slurmctld, one dict per job from ``scontrol show job -o`` (JobId, JobName, JobState, Partition,
    TRES, Comment, Command, StdOut, ...). Finished jobs stay listed for MinJobAge (600 s). Filter by ids or name
    (the plugin's job name is the run UUID)."""
    res = subprocess.run(
        ["scontrol", "show", "job", "-o"], capture_output=True, text=True, timeout=30, check=False
    )
    if res.returncode != 0 and "No jobs in the system" not in (res.stdout + res.stderr):
        raise RuntimeError(f"scontrol show job failed: {res.stderr.strip()}")
    jobs = [_parse_scontrol_line(ln) for ln in res.stdout.splitlines() if ln.strip().startswith("JobId=")]
    if job_ids is not None:
        wanted = {str(j) for j in job_ids}
        jobs = [j for j in jobs if j.get("JobId") in wanted]
    if name is not None:
        jobs = [j for j in jobs if j.get("JobName") == name]
    return jobs


# result key -> squeue --Format field
SQUEUE_FIELDS = {
    "JobID": "JobID",
    "Name": "Name",  # the plugin's job name is the run UUID
    "State": "State",
    "Partition": "Partition",
    "Comment": "Comment",  # the plugin's rule_<name>[_wildcards_<wc>]
    "TresPerJob": "tres-per-job",  # gres:gpu:N for --gpus=N
    "Reason": "Reason",
    "ExitCode": "exit_code",
}


def squeue_jobs(name: str | None = None) -> list[dict[str, str]]:
    """Jobs seen by ``squeue`` in all states (what the plugin's squeue status command sees)."""
    # `--Format field:|` appends "|" to each field (no padding), so values split cleanly
    fmt = ",".join(f"{f}:|" for f in SQUEUE_FIELDS.values())
    cmd = ["squeue", "-h", "-t", "all", "--Format", fmt]
    if name is not None:
        cmd += ["--name", name]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"squeue failed: {res.stderr.strip()}")
    jobs = []
    for line in res.stdout.splitlines():
        if not line.strip():
            continue
        values = line.split("|")
        jobs.append({k: v.strip() for k, v in zip(SQUEUE_FIELDS, values)})
    return jobs


# --------------------------------------------------------------------------------------------------------------------
# the repository's own SLURM profile, adapted to the local test cluster

REPO = HERE.parents[1]

# What the test variant changes in profiles/slurm/config.yaml, and why (everything else is tested as shipped).
CI_PROFILE_OVERRIDES = {
    "jobs": 16,
    "latency-wait": 5,
    # the cluster keeps finished jobs for MinJobAge=600 s; the plugin needs MinJobAge >= 3 x this
    "slurm-init-seconds-before-status-checks": 2,
    "seconds-between-status-checks": 2,
    "verbose": True,  # the plugin logs its sbatch calls at debug level only
}


def write_ci_profile(directory: Path, **overrides) -> Path:
    """``profiles/slurm/config.yaml`` with CI_PROFILE_OVERRIDES (+ ``overrides``; ``_`` for ``-``) in ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    profile.update(CI_PROFILE_OVERRIDES)
    profile.update({k.replace("_", "-"): v for k, v in overrides.items()})
    (directory / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return directory


def slurm_job(job_id) -> dict[str, str]:
    """One job as ``scontrol show job -o`` shows it (``{}`` when slurmctld no longer knows it)."""
    jobs = slurm_jobs([job_id])
    return jobs[0] if jobs else {}
