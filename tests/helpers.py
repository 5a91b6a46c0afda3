"""Helpers for the tests: repository paths, configs, and a Snakemake dry run through the API."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def plan_jobs(config: dict | None, workdir: Path, *, overrides: dict | None = None,
              restore_environment: bool = True) -> list:
    """The jobs a dry run of the workflow in `workdir` would execute, through the Snakemake API.

    `config` is taken whole, as `--configfile`; None plans the Snakefile's default config with `overrides` on top,
    as `--config key=value`. No network is used: data and models are loaded inside jobs, never while the DAG is built.
    """
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, Quietness, ResourceSettings

    import yaml

    workdir.mkdir(parents=True, exist_ok=True)
    configfiles = []
    if config is not None:
        configfiles.append(workdir / "plan-config.yaml")
        configfiles[0].write_text(yaml.safe_dump(config, sort_keys=False))
    environment = dict(os.environ)  # parsing a hub config sets the HF_* offline variables for its jobs
    try:
        with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
            workflow = api.workflow(resource_settings=ResourceSettings(cores=2),
                                    config_settings=ConfigSettings(configfiles=configfiles, config=overrides or {}),
                                    snakefile=ROOT / "Snakefile", workdir=workdir)
            workflow.dag().execute_workflow(executor="dryrun")
            # The dry-run executor marks every job it would have run as finished: that set is the plan.
            return list(workflow._workflow.dag._finished)
    finally:
        if restore_environment:
            os.environ.clear()
            os.environ.update(environment)


def load_config(name: str) -> dict:
    import yaml

    return yaml.safe_load((ROOT / "config" / name).read_text())


def harness_benchmarks() -> Path:
    """The real benchmark files of the paper's harness (../shared/data/benchmarks), which the paper's config reads:
    absent, a test skips with the reason (fails under CI=true)."""
    import pytest

    root = SHARED / "data" / "benchmarks"
    if not root.is_dir():
        message = f"{root} is absent: the paper's config reads the harness's benchmark files from there"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return root


def paper_config() -> dict:
    """config/config.yaml as a user runs it, with `benchmark_root` at the harness's files (README step 2)."""
    return {**load_config("config.yaml"), "benchmark_root": str(harness_benchmarks())}

# The snakemake of the environment running the tests (the project's .venv under `make test`).
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
