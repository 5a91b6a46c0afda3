"""The per-model results table: ours (mean_acc, avg@n; mean and spread over seeds) beside the paper's numbers,
sample counts, training weights; accuracy and source composition by round."""
import json
import logging
from pathlib import Path

from mindthegap.report import (paper_model, read_paper_results, results_table, rounds_table, run_label,
                               sample_counts, shown_labels, training_diagnostics, write_rounds, write_tables)
from mindthegap.rounds import parse_run
from mindthegap.runtime import setup_logging

setup_logging(snakemake.log[0])
params = snakemake.params
methods, extensions = dict(params.methods), list(params.extensions)
settings = dict(params.rounds)
metric_files = list(snakemake.input.metrics)
paper = read_paper_results(snakemake.input.paper)
paper_name = paper_model(params.model_names, {model for model, _ in paper})
logging.info("%s: the paper's model %s", snakemake.wildcards.model, paper_name or "none (no comparison)")
table = results_table(metric_files, methods, list(params.benchmarks), paper=paper, model=paper_name,
                      extensions=extensions)
labels = shown_labels(methods, extensions)
several_seeds = len(settings["seeds"]) > 1
checkpoints, run_labels = {}, {}
for run, path in zip(params.checkpoint_runs, snakemake.input.checkpoints):
    checkpoints[run] = path
    run_labels[run] = run_label(labels, parse_run(run), with_seed=several_seeds)
stats = {(int(round_), variant): json.loads(Path(path).read_text())
         for (round_, variant), path in zip(params.stats_rounds, snakemake.input.stats)}
by_round = rounds_table(metric_files, stats, dict(params.method_specs), extensions)
write_tables(table, snakemake.wildcards.model, snakemake.output.markdown, snakemake.output.csv,
             snakemake.output.latex, paper_name=paper_name, counts=sample_counts(metric_files, methods, extensions),
             diagnostics=training_diagnostics(checkpoints, run_labels), rounds=by_round, html=snakemake.output.html)
write_rounds(by_round, stats, snakemake.output.rounds_csv, snakemake.output.rounds_json, settings)
