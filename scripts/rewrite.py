"""Build one dataset variant (expert / rewritten / ablations) and its per-source statistics."""
import logging

import pandas as pd
from transformers import AutoTokenizer

from mindthegap import prompts
from mindthegap.io import read_parquet, write_json, write_parquet
from mindthegap.rewrite import build_dataset
from mindthegap.runtime import setup_logging

setup_logging(snakemake.log[0])


def judged(key):
    paths = snakemake.input.get(key)
    return pd.concat([read_parquet(p) for p in paths], ignore_index=True) if paths else None


tokenizer = AutoTokenizer.from_pretrained(snakemake.params.model, revision=snakemake.params.revision)
dataset, stats = build_dataset(
    read_parquet(snakemake.input.problems), snakemake.wildcards.variant,
    lambda problem: prompts.render(snakemake.params.train_template, problem, tokenizer),
    self_judged=judged("self"), guided_judged=judged("guided"), seed=snakemake.params.seed,
)
logging.info("sources: %s", stats["sources"])
write_parquet(dataset, snakemake.output.dataset)
write_json(stats, snakemake.output.stats)
