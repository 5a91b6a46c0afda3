# Mind the Gap: data rewriting for stable off-policy SFT -- the reproduction workflow.
# A table of contents: each stage lives in rules/<stage>.smk; all logic in the `mindthegap` package.
import os

from snakemake.utils import min_version

min_version("9.0")

# The env files of envs/ install this checkout with `-e ${MINDTHEGAP_ROOT}`: conda runs their pip section from
# .snakemake/conda/, where a relative path would miss the checkout; pip expands the variable from here.
os.environ["MINDTHEGAP_ROOT"] = workflow.basedir


envvars:
    "MINDTHEGAP_ROOT",  # set just above; declared so that remote executors pass it on


# The paper's setup, with any `--config key=value` applied on top, unless another config file is given
# (`--configfile config/demo.yaml`): a scenario's file is taken whole, never merged with the paper's, so it never
# inherits the paper's models or benchmarks by accident.
if not workflow.overwrite_configfiles:

    configfile: f"{workflow.basedir}/config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/fetch.smk"
include: "rules/data.smk"
include: "rules/sample.smk"
include: "rules/verify.smk"
include: "rules/rewrite.smk"
include: "rules/gap.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


rule all:
    input:
        get_final_output(),
    default_target: True
