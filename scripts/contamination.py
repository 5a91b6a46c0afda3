"""Training problems against every benchmark -> contamination/<dataset>.json (counts and matched pairs) + .md, and
.html for the Snakemake report."""
import logging
from pathlib import Path

from mindthegap.decontamination import contamination_report, summary_markdown, summary_table
from mindthegap.io import read_parquet, write_json, write_text
from mindthegap.report import html_page
from mindthegap.runtime import setup_logging

setup_logging(snakemake.log[0])
benchmarks = {Path(path).stem: read_parquet(path) for path in snakemake.input.benchmarks}
report = contamination_report(read_parquet(snakemake.input.problems), benchmarks,
                              dataset=snakemake.wildcards.dataset, n=snakemake.params.ngram)
logging.info("%d of %d training problems found in a benchmark", report["contaminated_training_problems"],
             report["training_problems"])
write_json(report, snakemake.output.report)
write_text(summary_markdown(report), snakemake.output.table)
note = summary_markdown(report).split("\n\n")[0].replace("`", "")
write_text(html_page([(f"Training problems of {report['dataset']} in a benchmark", note, summary_table(report))]),
           snakemake.output.html)
