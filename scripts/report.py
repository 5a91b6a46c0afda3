"""The per-model results table: ours (mean_acc, avg@n) beside the paper's numbers, sample counts, training weights."""
import logging

from mindthegap.report import (paper_model, read_paper_results, results_table, sample_counts, shown_labels,
                               training_diagnostics, write_tables)
from mindthegap.runtime import setup_logging

setup_logging(snakemake.log[0])
params = snakemake.params
methods, extensions = dict(params.methods), list(params.extensions)
metric_files = list(snakemake.input.metrics)
paper = read_paper_results(snakemake.input.paper)
paper_name = paper_model(params.model_names, {model for model, _ in paper})
logging.info("%s: the paper's model %s", snakemake.wildcards.model, paper_name or "none (no comparison)")
table = results_table(metric_files, methods, list(params.benchmarks), paper=paper, model=paper_name,
                      extensions=extensions)
checkpoints = {path.rstrip("/").rsplit("/", 1)[-1]: path for path in snakemake.input.checkpoints}
write_tables(table, snakemake.wildcards.model, snakemake.output.markdown, snakemake.output.csv,
             snakemake.output.latex, paper_name=paper_name, counts=sample_counts(metric_files, methods, extensions),
             diagnostics=training_diagnostics(checkpoints, shown_labels(methods, extensions)),
             html=snakemake.output.html)
