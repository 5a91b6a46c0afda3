"""The authors' released data (xychao/MTG) -> datasets/<model>/released.parquet in the dataset contract."""
import logging

from transformers import AutoTokenizer

from mindthegap import prompts
from mindthegap.io import write_json, write_parquet
from mindthegap.released import released_dataset
from mindthegap.runtime import setup_logging

setup_logging(snakemake.log[0])
tokenizer = AutoTokenizer.from_pretrained(snakemake.params.model, revision=snakemake.params.revision)
dataset, stats = released_dataset(
    dict(snakemake.params.spec), dict(snakemake.params.fields),
    lambda problem: prompts.render(snakemake.params.train_template, problem, tokenizer),
)
logging.info("%d rows from %s; sources: %s", stats["rows"], stats["release"]["where"], stats["sources"])
write_parquet(dataset, snakemake.output.dataset)
write_json(stats, snakemake.output.stats)
