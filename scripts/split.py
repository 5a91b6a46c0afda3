"""Problems the model solved itself (>= 1 usable sample: correct and not cut at the length limit) and the rest."""
import logging

from mindthegap.io import read_parquet, write_lines
from mindthegap.runtime import setup_logging
from mindthegap.verify import split_shards

setup_logging(snakemake.log[0])
solved, failed = split_shards(snakemake.input.verified, read_parquet(snakemake.input.problems)["id"].tolist())
logging.info("solved %d, failed %d", len(solved), len(failed))
write_lines(solved, snakemake.output.correct)
write_lines(failed, snakemake.output.failed)
