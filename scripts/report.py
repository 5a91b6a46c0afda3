"""The per-model results table."""
from mindthegap.report import results_table, training_diagnostics, write_tables
from mindthegap.runtime import setup_logging

setup_logging(snakemake.log[0])
labels = dict(snakemake.params.methods)
table = results_table(list(snakemake.input.metrics), labels, list(snakemake.params.benchmarks))
checkpoints = {path.rstrip("/").rsplit("/", 1)[-1]: path for path in snakemake.input.checkpoints}
write_tables(table, snakemake.wildcards.model, snakemake.params.n, snakemake.output.markdown,
             snakemake.output.csv, snakemake.output.latex, training_diagnostics(checkpoints, labels))
