"""Judge one shard of samples against the gold answers."""
import logging

from mindthegap.io import atomic_path, read_parquet
from mindthegap.runtime import setup_logging
from mindthegap.verify import READ_BATCH_ROWS, judge_samples, status_counts

setup_logging(snakemake.log[0])
judged = judge_samples(read_parquet(snakemake.input.samples), read_parquet(snakemake.input.problems),
                       workers=snakemake.threads, timeout=snakemake.params.timeout)
logging.info("accuracy %.3f; grader status %s", judged["correct"].mean() if len(judged) else 0, status_counts(judged))
# Small row groups: the rewrite reads the large columns of a few kept rows without decoding a whole shard.
with atomic_path(snakemake.output[0]) as tmp:
    judged.to_parquet(tmp, index=False, row_group_size=READ_BATCH_ROWS)
