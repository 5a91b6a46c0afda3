# Mind the Gap: data rewriting for stable off-policy SFT -- the reproduction workflow.
# A table of contents: each stage lives in rules/<stage>.smk; all logic in the `mindthegap` package.
from snakemake.utils import min_version

min_version("9.0")


# The paper's setup unless another config is given whole (`--configfile config/demo.yaml`): configs are not
# merged, so a scenario never inherits the paper's models or benchmarks by accident.
if not config:

    configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/sample.smk"
include: "rules/verify.smk"
include: "rules/rewrite.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


rule all:
    input:
        get_final_output(),
    default_target: True
