"""The per-model results table."""
from mindthegap.report import results_table, write_tables
from mindthegap.runtime import setup_logging

setup_logging(snakemake.log[0])
table = results_table(list(snakemake.input), dict(snakemake.params.methods), list(snakemake.params.benchmarks))
write_tables(table, snakemake.wildcards.model, snakemake.params.n, snakemake.output.markdown,
             snakemake.output.csv, snakemake.output.latex)
