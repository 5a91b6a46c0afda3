"""Tests against a real one-node SLURM cluster started by tests/slurm/cluster.sh.

Fixture ``slurm_cluster`` (session scope) starts the cluster once and stops it at session end. Where the machine
cannot run SLURM (``cluster.sh start`` exits 3: not root, no apt-get, install failed) the tests are skipped, unless
``CI=true``: then they fail, because in CI they must run.

Helpers for tests (profile, running snakemake, the sbatch calls issued, the jobs slurmctld knows) are in
slurm_helpers.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CLUSTER_SH = HERE / "cluster.sh"
CANNOT_RUN = 3  # exit code of `cluster.sh start` when this machine cannot run SLURM

if str(HERE) not in sys.path:  # so tests can `from slurm_helpers import ...` under any import mode
    sys.path.insert(0, str(HERE))


# --------------------------------------------------------------------------------------------------------------------
# marker and fixture


def pytest_collection_modifyitems(config, items):
    """Every test under tests/slurm gets the `slurm` marker (declared in pyproject)."""
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.slurm)


def _cluster(cmd: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(CLUSTER_SH), cmd], capture_output=True, text=True, timeout=timeout, check=False
    )


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


@pytest.fixture(scope="session")
def slurm_cluster():
    """Start the one-node cluster once per session; always stop it at session end.

    Yields a dict with ``node`` (the node name) and ``start_output`` (what `cluster.sh start` printed).
    """
    try:
        started = _cluster("start")
    except subprocess.TimeoutExpired as e:
        _cluster("stop", timeout=120)
        pytest.fail(f"cluster.sh start timed out after {e.timeout} s")
    if started.returncode == CANNOT_RUN:
        lines = [ln for ln in started.stderr.strip().splitlines() if ln.strip()]
        reason = lines[-1] if lines else "cluster.sh start: cannot run SLURM here"
        if _in_ci():
            pytest.fail(f"CI=true but the SLURM tests cannot run: {reason}", pytrace=False)
        pytest.skip(reason)
    if started.returncode != 0:
        _cluster("stop", timeout=120)
        pytest.fail(
            f"cluster.sh start failed (exit {started.returncode}):\n{started.stdout}\n{started.stderr}",
            pytrace=False,
        )
    try:
        yield {
            "node": subprocess.run(["hostname", "-s"], capture_output=True, text=True).stdout.strip(),
            "start_output": started.stdout + started.stderr,
        }
    finally:
        stopped = _cluster("stop", timeout=120)
        if stopped.returncode != 0:  # never expected; do not mask the tests' own result
            print(f"cluster.sh stop exited {stopped.returncode}:\n{stopped.stderr}", file=sys.stderr)
