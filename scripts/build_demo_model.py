"""Pre-train the demo's tiny model from scratch (no download)."""
from mindthegap import demo
from mindthegap.io import write_json
from mindthegap.runtime import setup_logging

setup_logging(snakemake.log[0])
settings = dict(snakemake.params.settings)
stats = demo.build_model(
    snakemake.output[0], seed=settings["seed"], steps=settings["steps"], batch_size=settings["batch_size"],
    lr=settings["learning_rate"], hidden_size=settings["hidden_size"], layers=settings["layers"],
    corpus_size=settings["corpus_size"], guided_template=settings["guided_template"],
)
write_json(stats, f"{snakemake.output[0]}/pretraining.json")
