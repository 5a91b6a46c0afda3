"""Problems the model solved itself (>= 1 correct sample) and those it failed."""
import logging

import pandas as pd

from mindthegap.io import read_parquet, write_lines
from mindthegap.runtime import setup_logging
from mindthegap.verify import split_ids

setup_logging(snakemake.log[0])
judged = pd.concat([read_parquet(path) for path in snakemake.input.verified], ignore_index=True)
solved, failed = split_ids(judged, read_parquet(snakemake.input.problems)["id"].tolist())
logging.info("solved %d, failed %d", len(solved), len(failed))
write_lines(solved, snakemake.output.correct)
write_lines(failed, snakemake.output.failed)
