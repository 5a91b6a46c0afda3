"""Sample solutions for one shard: self / guided rewriting (rule sample) or benchmark evaluation (evaluate_sample)."""
import logging

from mindthegap.generation import SamplingParams, load_backend
from mindthegap.io import read_lines, read_parquet
from mindthegap.runtime import parse_scatteritem, setup_logging
from mindthegap.sampling import prompt_renderer, sample_to_parquet, shard

setup_logging(snakemake.log[0])
params = snakemake.params
if "benchmark" in snakemake.input.keys():
    problems = read_parquet(snakemake.input.benchmark)
else:
    problems = read_parquet(snakemake.input.problems)
    if "failed" in snakemake.input.keys():
        failed = set(read_lines(snakemake.input.failed))
        problems = problems[problems["id"].isin(failed)].reset_index(drop=True)
index, count = parse_scatteritem(snakemake.wildcards.scatteritem)
problems = shard(problems, index, count)
logging.info("shard %d/%d: %d problems", index + 1, count, len(problems))


def backend():
    return load_backend(params.backend, params.model, revision=params.revision, **params.backend_options)


summary = sample_to_parquet(problems, prompt_renderer(dict(params.prompt), params.model, params.revision), backend,
                            SamplingParams(**params.sampling), snakemake.output[0], chunk_size=params.chunk_size)
logging.info("done: %s", summary)
