"""Prefetch one hub model or dataset into the hub cache (online), and write its marker for the offline jobs."""
from mindthegap.fetch import prefetch, use_hub_cache
from mindthegap.io import write_json
from mindthegap.runtime import setup_logging

setup_logging(snakemake.log[0])
use_hub_cache(snakemake.params.cache, offline=False)  # the one job that goes online; before any hub import
marker = prefetch(snakemake.params.kind, dict(snakemake.params.spec), snakemake.params.cache,
                  where=snakemake.params.where)
write_json(marker, snakemake.output[0])
