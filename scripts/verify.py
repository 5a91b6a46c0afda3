"""Judge one shard of samples against the gold answers."""
import logging

from mindthegap.io import read_parquet, write_parquet
from mindthegap.runtime import setup_logging
from mindthegap.verify import judge_samples, status_counts

setup_logging(snakemake.log[0])
judged = judge_samples(read_parquet(snakemake.input.samples), read_parquet(snakemake.input.problems),
                       workers=snakemake.threads, timeout=snakemake.params.timeout)
logging.info("accuracy %.3f; grader status %s", judged["correct"].mean() if len(judged) else 0, status_counts(judged))
write_parquet(judged, snakemake.output[0])
