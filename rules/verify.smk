# Judge every sample against the gold answer; split problems into solved and failed by the model itself (solved:
# a correct sample that was not cut at the length limit). split_self reads only the columns it needs.


rule verify:
    input:
        samples=samples_file(),
        problems=problems_file(),
    output:
        verified_file(),
    log:
        f"{RESULTS}/logs/verify/{{model}}/round{{round}}/{{phase}}/{{scatteritem}}.log",
    params:
        timeout=config["grader"]["timeout"],
    threads: config["grader"]["workers"]
    resources:
        slurm_partition=RES["cpu_partition"],
        slurm_account=RES["account"],
        runtime=scaled(RES["cpu_runtime_min"]),
        mem_mb=scaled_mem(RES["cpu_mem_mb"]),
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/verify.py"


rule split_self:
    input:
        verified=verified_shards("self"),
        problems=problems_file(),
    output:
        correct=split_file(kind="correct"),
        failed=split_file(kind="failed"),
    log:
        f"{RESULTS}/logs/split_self/{{model}}/round{{round}}.log",
    localrule: True
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/split.py"
