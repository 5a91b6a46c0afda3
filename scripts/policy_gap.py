"""Score the rewritten dataset's kept responses and expert solutions under the base model (rule policy_gap) or a
trained checkpoint (rule policy_gap_checkpoint, which also reads the base model's scores)."""
import logging
import time

from transformers import AutoTokenizer

from mindthegap.gap import checkpoint_shift, checkpoint_summary, run_policy_gap, write_rows
from mindthegap.generation import load_backend
from mindthegap.io import read_parquet, write_json, write_parquet
from mindthegap.rounds import parse_run
from mindthegap.runtime import setup_logging
from mindthegap.sampling import resume_key

setup_logging(snakemake.log[0])
started = time.monotonic()
params, inputs, outputs = snakemake.params, snakemake.input, snakemake.output
tokenizer = AutoTokenizer.from_pretrained(params.model, revision=params.revision)


def backend():
    return load_backend(params.backend, params.model, revision=params.revision, **params.backend_options)


scored_with = {"model": params.model, "revision": params.revision, "backend": params.backend}
rows, summary = run_policy_gap(
    read_parquet(inputs.dataset), read_parquet(inputs.problems), backend, tokenizer, model=snakemake.wildcards.model,
    scored_with=scored_with, work=params.work, chunk_size=params.chunk_size, where=inputs.dataset,
    # finished chunks in the work directory are reused only when all of these are unchanged
    resume_key=resume_key(model=params.model, revision=params.revision, backend=params.backend,
                          backend_options=dict(params.backend_options)),
)
if "base_rows" in inputs.keys():  # a checkpoint: its scores beside the base model's
    shift = checkpoint_shift(rows, read_parquet(inputs.base_rows))
    write_parquet(shift, outputs.rows)
    run = snakemake.wildcards.run  # round{r}/{method}/seed{s}
    summary = checkpoint_summary(rows, shift, snakemake.wildcards.model, parse_run(run).method, scored_with)
    write_json({**summary, "run": run}, outputs.summary)
else:
    write_rows(rows, outputs.rows)
    write_json(summary, outputs.summary)
logging.info("done: %d rows in %.1f s", len(rows), time.monotonic() - started)
