"""One figure of the report per rule (rules/report.smk): read the rule's inputs, draw, write PNG + SVG."""
import json
from pathlib import Path

import pandas as pd

from mindthegap import figures
from mindthegap.report import evaluation_curves, paper_model, read_paper_results, record_run, shown_labels
from mindthegap.rounds import parse_run
from mindthegap.runtime import setup_logging

setup_logging(snakemake.log[0])
inputs, params, model = snakemake.input, snakemake.params, snakemake.wildcards.model


def labels():
    """Run id (`base`, `round{r}/{method}/seed{s}`) -> its label, in plot order."""
    return shown_labels(dict(params.runs), list(params.run_extensions))


def accuracy():
    # keyed by run: a method trained in several rounds or under several seeds is several bars
    records = [{**r, "method": record_run(r)} for r in (json.loads(Path(p).read_text()) for p in inputs.metrics)]
    paper = read_paper_results(inputs.paper)
    name = paper_model(params.model_names, {m for m, _ in paper})
    methods = dict(params.methods)
    theirs = {run: paper[(name, methods[parse_run(run).method])] for run in params.runs
              if parse_run(run).round <= 1 and (name, methods[parse_run(run).method]) in paper
              and parse_run(run).method not in params.extensions}
    return figures.accuracy_figure(records, labels(), list(params.benchmarks), paper=theirs,
                                   title=f"{model}: accuracy per benchmark (avg@n, 95 % interval)"
                                   + (f"; ◇ = {name} in the paper" if theirs else ""))


def pass_at_k():
    return figures.curves_figure(evaluation_curves(inputs.verdicts), labels(), list(params.benchmarks),
                                 title=f"{model}: pass@k and maj@k")


def sources():
    counts = {variant: json.loads(open(path).read())["sources"] for variant, path in zip(params.variants, inputs.stats)}
    return figures.sources_figure(counts, title=f"{model}: training rows per source")


def policy_gap():
    rows_file = next(path for path in inputs.policy_gap if path.endswith(".parquet"))
    shifts = {labels()[run]: json.loads(open(path).read()) for run, path in zip(params.checkpoint_runs,
                                                                                  inputs.checkpoints)}
    return figures.policy_gap_figure(pd.read_parquet(rows_file), shifts, title=f"{model}: policy gap per source")


def training():
    return figures.training_figure(figures.read_training_logs(dict(zip(params.checkpoint_runs, inputs.checkpoints))),
                                   labels(),
                                   title=f"{model}: training curves")


DRAW = {"figure_accuracy": accuracy, "figure_pass_at_k": pass_at_k, "figure_sources": sources,
        "figure_policy_gap": policy_gap, "figure_training": training}
figures.save(DRAW[snakemake.rule](), snakemake.output.png, snakemake.output.vector)
