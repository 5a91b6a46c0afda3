"""Sample one shard of every benchmark with one model load; write the shard's samples per benchmark."""
import logging

from mindthegap.evaluation import sample_benchmarks
from mindthegap.generation import SamplingParams, load_backend
from mindthegap.io import read_parquet
from mindthegap.runtime import parse_scatteritem, setup_logging
from mindthegap.sampling import prompt_renderer, resume_key

setup_logging(snakemake.log[0])
params = snakemake.params
benchmarks = {name: read_parquet(path) for name, path in zip(params.benchmarks, snakemake.input.benchmarks)}
index, count = parse_scatteritem(snakemake.wildcards.scatteritem)


def backend():
    return load_backend(params.backend, params.model, revision=params.revision, **params.backend_options)


render = prompt_renderer(dict(params.prompt), params.model, params.revision)
outputs = {name: snakemake.output[name] for name in params.benchmarks}
key = resume_key(model=params.model, revision=params.revision, backend=params.backend,
                 backend_options=dict(params.backend_options), prompt=dict(params.prompt))
summary = sample_benchmarks(benchmarks, index, count, render, backend, SamplingParams(**params.sampling), outputs,
                            params.work, chunk_size=params.chunk_size, resume_key=key)
logging.info("done: %s", summary)
