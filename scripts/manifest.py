"""results/manifest.json: the provenance of the tables (config, package versions, git commit)."""
from pathlib import Path

from mindthegap.io import write_json
from mindthegap.report import provenance
from mindthegap.runtime import setup_logging

setup_logging(snakemake.log[0])
write_json(provenance(dict(snakemake.config), list(snakemake.input), Path(snakemake.scriptdir).parent),
           snakemake.output[0])
