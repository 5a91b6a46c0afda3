"""Sample solutions for one shard of the rewriting phases (self / guided): rule sample."""
import logging

from mindthegap.generation import SamplingParams, load_backend
from mindthegap.io import read_lines, read_parquet
from mindthegap.runtime import parse_scatteritem, setup_logging
from mindthegap.sampling import prompt_renderer, resume_key, sample_to_parquet, shard

setup_logging(snakemake.log[0])
params = snakemake.params
problems = read_parquet(snakemake.input.problems)
if "failed" in snakemake.input.keys():  # guided: re-solve only what the model failed on its own
    failed = set(read_lines(snakemake.input.failed))
    problems = problems[problems["id"].isin(failed)].reset_index(drop=True)
index, count = parse_scatteritem(snakemake.wildcards.scatteritem)
problems = shard(problems, index, count)
logging.info("shard %d/%d: %d problems", index + 1, count, len(problems))


def backend():
    return load_backend(params.backend, params.model, revision=params.revision, **params.backend_options)


summary = sample_to_parquet(
    problems, prompt_renderer(dict(params.prompt), params.model, params.revision), backend,
    SamplingParams(**params.sampling), snakemake.output[0], chunk_size=params.chunk_size,
    # Partial work in <output>.parts/ is reused only when all of these are unchanged.
    resume_key=resume_key(model=params.model, revision=params.revision, backend=params.backend,
                          backend_options=dict(params.backend_options), prompt=dict(params.prompt)),
)
logging.info("done: %s", summary)
