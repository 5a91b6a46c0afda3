"""Judge a run's benchmark samples; write verdicts and metrics (avg@n, the harness's mean_acc, pass@n, maj@n, CI,
grader status, finish reasons)."""
import logging

import pandas as pd

from mindthegap.io import read_parquet, write_json, write_parquet
from mindthegap.report import evaluation_metrics
from mindthegap.runtime import setup_logging
from mindthegap.verify import judge_samples

setup_logging(snakemake.log[0])
samples = pd.concat([read_parquet(p) for p in snakemake.input.samples], ignore_index=True)
judged = judge_samples(samples, read_parquet(snakemake.input.benchmark), workers=snakemake.threads,
                       timeout=snakemake.params.timeout)
wc = snakemake.wildcards
result = evaluation_metrics(judged, model=wc.model, method=wc.method, benchmark=wc.bench)
logging.info("%s/%s/%s: avg@%d %.2f %%, mean_acc %.2f %%", wc.model, wc.method, wc.bench, result["n"],
             100 * result["accuracy"], result["mean_acc"])
write_parquet(judged, snakemake.output.verdicts)
write_json(result, snakemake.output.metrics)
