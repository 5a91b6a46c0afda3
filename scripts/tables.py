"""The report's detail tables (rules/report.smk): the evaluation per run and benchmark, the training data per
source; each as Markdown, CSV, LaTeX and HTML."""
import json

import pandas as pd

from mindthegap.report import evaluation_curves, evaluation_detail, source_table, write_table_formats
from mindthegap.runtime import setup_logging

setup_logging(snakemake.log[0])
inputs, params, model = snakemake.input, snakemake.params, snakemake.wildcards.model
out = snakemake.output

if snakemake.rule == "evaluation_table":
    table = evaluation_detail(list(inputs.metrics), evaluation_curves(inputs.verdicts), dict(params.methods),
                              list(params.benchmarks), list(params.extensions))
    title = f"{model}: evaluation per method and benchmark (%)"
    note = ("avg@n: the mean over all n samples, with its 95 % bootstrap interval over problems (CI low, CI high); "
            "mean_acc: the harness's metric, the paper's; pass@k (unbiased) and maj@k (majority vote of the first k "
            "answers); truncated: samples cut at the token limit; then the grader's statuses.")
else:
    datasets = {variant: (pd.read_parquet(data), json.loads(open(stats).read()))
                for variant, data, stats in zip(params.variants, inputs.datasets, inputs.stats)}
    gap = json.loads(open(inputs.gap_summary).read()) if "gap_summary" in inputs.keys() else None
    table = source_table(datasets, gap)
    title = f"{model}: training data per source"
    note = ("rows and share of each dataset; phase accuracy: the accuracy of the samples of the phase that produced "
            "the source (self: the model alone, guided: with the expert solution as a hint); lengths of the kept "
            "completions" + ("; under the base model: mean token log-prob of the kept response and of the expert "
                             "solution, the kept response's median perplexity, and the variance of the token "
                             "log-ratio between the training prompt and the behaviour policy." if gap else "."))
write_table_formats(table, title, note, out.markdown, out.csv, out.latex, out.html)
