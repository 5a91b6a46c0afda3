"""Weighted SFT of one method: one process per GPU (mindthegap.launch); resumes from the last checkpoint in the
work directory."""
import json
import logging
from pathlib import Path

from mindthegap.launch import run_training
from mindthegap.runtime import setup_logging

setup_logging(snakemake.log[0])
resources = snakemake.resources
summary = run_training(snakemake.input.dataset, snakemake.params.model, snakemake.output[0],
                       snakemake.params.work_dir, json.loads(snakemake.params.hparams),
                       revision=snakemake.params.revision, gpus_per_node=int(resources.get("gpus_per_node", 1)),
                       nodes=int(resources.get("nodes", 1)), strategy=resources.get("training_strategy", "fsdp"),
                       accelerate_dir=Path(snakemake.scriptdir).parent / "envs" / "accelerate",
                       cpus_per_node=snakemake.threads)
logging.info("done: %s", summary)
