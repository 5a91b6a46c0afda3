"""Judge one run's samples of every benchmark; write each benchmark's verdicts and metrics (avg@n, the harness's
mean_acc, pass@n, maj@n, CI, grader status, finish reasons)."""
import logging
from pathlib import Path

import pandas as pd

from mindthegap.io import read_parquet, write_json, write_parquet
from mindthegap.report import evaluation_metrics
from mindthegap.runtime import setup_logging
from mindthegap.verify import judge_samples

setup_logging(snakemake.log[0])
params, wc = snakemake.params, snakemake.wildcards
for bench, gold in zip(params.benchmarks, snakemake.input.benchmarks):
    shards = [path for path in snakemake.input.samples if Path(path).stem == bench]  # samples/<shard>/<bench>
    samples = pd.concat([read_parquet(path) for path in shards], ignore_index=True)
    judged = judge_samples(samples, read_parquet(gold), workers=snakemake.threads, timeout=params.timeout,
                           stop_strings=params.stop_strings)
    result = evaluation_metrics(judged, model=wc.model, benchmark=bench, **params.run)
    logging.info("%s/%s/%s: avg@%d %.2f %%, mean_acc %.2f %%", wc.model, wc.run, bench, result["n"],
                 100 * result["accuracy"], result["mean_acc"])
    write_parquet(judged, snakemake.output[f"verdicts_{bench}"])
    write_json(result, snakemake.output[f"metrics_{bench}"])
