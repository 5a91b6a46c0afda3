# The self -> guided -> expert cascade: one training row per problem, labelled with its source. Samples cut at the
# length limit are never kept (counted in the stats); the large columns are read only for the kept samples.


rule rewrite:
    input:
        unpack(rewrite_inputs),
    output:
        dataset=dataset_file(),
        stats=dataset_stats_file(),
    log:
        f"{RESULTS}/logs/rewrite/{{model}}/round{{round}}/{{variant}}.log",
    params:
        model=model_path,
        revision=model_revision,
        train_template=train_template,
        seed=config["rewrite"]["seed"],
    resources:
        slurm_partition=RES["cpu_partition"],
        slurm_account=RES["account"],
        runtime=scaled(RES["cpu_runtime_min"]),
        mem_mb=scaled_mem(RES["cpu_mem_mb"]),
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/rewrite.py"


# The authors' released data (config `released`, src/mindthegap/released.py) as the dataset variant `released`: the
# release's question under the model's training template, its answer as the completion, no behaviour log-probs.


rule released:
    input:
        unpack(released_inputs),
    output:
        dataset=f"{RESULTS}/datasets/{{model}}/released.parquet",
        stats=f"{RESULTS}/datasets/{{model}}/released.stats.json",
    log:
        f"{RESULTS}/logs/released/{{model}}.log",
    params:
        spec=released_spec,
        fields=released_fields,
        model=model_path,
        revision=model_revision,
        train_template=train_template,
    resources:
        slurm_partition=RES["cpu_partition"],
        slurm_account=RES["account"],
        runtime=scaled(RES["cpu_runtime_min"]),
        mem_mb=scaled_mem(RES["cpu_mem_mb"]),
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/released.py"
