"""`decontamination: drop`: the training problems without those found in a benchmark."""
import json
import logging

from mindthegap.decontamination import drop_contaminated
from mindthegap.io import read_parquet, write_parquet
from mindthegap.runtime import setup_logging

setup_logging(snakemake.log[0])
problems = read_parquet(snakemake.input.problems)
with open(snakemake.input.report) as handle:
    kept = drop_contaminated(problems, json.load(handle))
logging.info("dropped %d contaminated training problems, %d left", len(problems) - len(kept), len(kept))
write_parquet(kept, snakemake.output[0])
