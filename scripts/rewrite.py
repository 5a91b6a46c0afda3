"""Build one dataset variant (expert / rewritten / ablations) and its per-source statistics."""
import logging

from transformers import AutoTokenizer

from mindthegap import prompts
from mindthegap.io import read_parquet, write_json, write_parquet
from mindthegap.rewrite import build_dataset_from_shards
from mindthegap.runtime import setup_logging

setup_logging(snakemake.log[0])
tokenizer = AutoTokenizer.from_pretrained(snakemake.params.model, revision=snakemake.params.revision)
dataset, stats = build_dataset_from_shards(
    read_parquet(snakemake.input.problems), snakemake.wildcards.variant,
    lambda problem: prompts.render(snakemake.params.train_template, problem, tokenizer),
    self_paths=snakemake.input.get("self"), guided_paths=snakemake.input.get("guided"), seed=snakemake.params.seed,
)
logging.info("sources: %s; self samples: %s; guided samples: %s", stats["sources"], stats.get("self_samples"),
             stats.get("guided_samples"))
write_parquet(dataset, snakemake.output.dataset)
write_json(stats, snakemake.output.stats)
