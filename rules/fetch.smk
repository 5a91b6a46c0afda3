# The hub, once: each hub model (pinned revision), NuminaMath-CoT and each hub benchmark is fetched into the hub
# cache (config `hub_cache`) by one job on a machine with network; every other job reads the cache offline
# (rules/common.smk sets the environment; src/mindthegap/fetch.py). The consumers depend on the marker files with
# `ancient()`: a re-fetch never reruns them, while a changed revision does (it is in their params).
# If the CPU partition has no network either, run this stage where there is:
#   snakemake --profile profiles/local --until prefetch


rule prefetch:
    wildcard_constraints:
        kind="model|problems|benchmark|released",
    output:
        f"{RESULTS}/prefetch/{{kind}}/{{name}}.json",
    log:
        f"{RESULTS}/logs/prefetch/{{kind}}/{{name}}.log",
    params:
        kind=prefetch_kind,
        spec=prefetch_spec,
        where=prefetch_config_key,
        cache=HUB_CACHE,
    resources:
        slurm_partition=RES["cpu_partition"],
        slurm_account=RES["account"],
        runtime=scaled(RES["cpu_runtime_min"]),
        mem_mb=scaled_mem(RES["cpu_mem_mb"]),
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/fetch.py"
