"""One benchmark -> results/benchmarks/<bench>.parquet (gold answers as the Qwen2.5-Math harness takes them)."""
import logging

from mindthegap.data import load_benchmark
from mindthegap.io import write_parquet
from mindthegap.runtime import setup_logging

setup_logging(snakemake.log[0])
benchmark = load_benchmark(dict(snakemake.params.spec), snakemake.wildcards.bench)
logging.info("%d problems", len(benchmark))
write_parquet(benchmark, snakemake.output[0])
