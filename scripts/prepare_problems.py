"""Training problems (expert solutions + gold answers) -> results/problems/<name>.parquet."""
import logging

from mindthegap.data import load_problems
from mindthegap.io import write_parquet
from mindthegap.runtime import setup_logging

setup_logging(snakemake.log[0])
problems = load_problems(dict(snakemake.params.spec), snakemake.params.name)
logging.info("%d problems, %d without a gold answer", len(problems), (problems["answer"] == "").sum())
write_parquet(problems, snakemake.output[0])
