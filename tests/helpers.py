"""Helpers for the tests: repository paths, configs, and a Snakemake dry run through the API."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def plan_jobs(config: dict, workdir: Path) -> list:
    """The jobs a dry run of the workflow in `workdir` would execute, through the Snakemake API.

    No network is used: data and models are loaded inside jobs, never while the DAG is built.
    """
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, Quietness, ResourceSettings

    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        workflow = api.workflow(resource_settings=ResourceSettings(cores=2),
                                config_settings=ConfigSettings(config=config),
                                snakefile=ROOT / "Snakefile", workdir=workdir)
        workflow.dag().execute_workflow(executor="dryrun")
        # The dry-run executor marks every job it would have run as finished: that set is the plan.
        return list(workflow._workflow.dag._finished)


def load_config(name: str) -> dict:
    import yaml

    return yaml.safe_load((ROOT / "config" / name).read_text())

# The snakemake of the environment running the tests (the project's .venv under `make test`).
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
