"""Weighted SFT of one method; resumes from the last checkpoint in the work directory."""
import json
import logging

from mindthegap.runtime import setup_logging
from mindthegap.training import train

setup_logging(snakemake.log[0])
summary = train(snakemake.input.dataset, snakemake.params.model, snakemake.output[0], snakemake.params.work_dir,
                json.loads(snakemake.params.hparams), revision=snakemake.params.revision)
logging.info("done: %s", summary)
