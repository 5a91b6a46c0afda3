# Raw problems and benchmarks -> one schema (DESIGN.md §1). Downloads happen here, inside jobs, never at parse time.


rule build_demo_model:
    output:
        directory(f"{RESULTS}/models/{{model}}"),
    log:
        f"{RESULTS}/logs/build_demo_model/{{model}}.log",
    benchmark:
        f"{RESULTS}/timings/build_demo_model/{{model}}.tsv"
    params:
        settings=demo_model_params,
    threads: 2
    resources:
        slurm_partition=RES["cpu_partition"],
        slurm_account=RES["account"],
        runtime=scaled(RES["cpu_runtime_min"]),
        mem_mb=scaled_mem(RES["cpu_mem_mb"]),
    conda:
        "../envs/training.yaml"
    script:
        "../scripts/build_demo_model.py"


rule prepare_problems:
    input:
        problems_input,
    output:
        f"{RESULTS}/problems/{{dataset}}.parquet",
    log:
        f"{RESULTS}/logs/prepare_problems/{{dataset}}.log",
    params:
        spec=source_spec(config["problems"]),
        name=config["problems"]["name"],
    resources:
        slurm_partition=RES["cpu_partition"],
        slurm_account=RES["account"],
        runtime=scaled(RES["cpu_runtime_min"]),
        mem_mb=scaled_mem(RES["cpu_mem_mb"]),
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/prepare_problems.py"


rule prepare_benchmark:
    input:
        benchmark_input,
    output:
        f"{RESULTS}/benchmarks/{{bench}}.parquet",
    log:
        f"{RESULTS}/logs/prepare_benchmark/{{bench}}.log",
    params:
        spec=benchmark_spec,
    resources:
        slurm_partition=RES["cpu_partition"],
        slurm_account=RES["account"],
        runtime=scaled(RES["cpu_runtime_min"]),
        mem_mb=scaled_mem(RES["cpu_mem_mb"]),
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/prepare_benchmark.py"


# Training problems against every benchmark (src/mindthegap/decontamination.py): normalised exact match and a shared
# word 8-gram. The report is always written; with `decontamination: drop` the later stages read the problems without
# the contaminated ones (common.smk: problems_file), with `report` (default, the paper's data) they read the prepared
# problems and this rule changes nothing they train on.


rule contamination:
    input:
        unpack(contamination_inputs),
    output:
        report=f"{RESULTS}/contamination/{{dataset}}.json",
        table=f"{RESULTS}/contamination/{{dataset}}.md",
        html=report(f"{RESULTS}/contamination/{{dataset}}.html", caption="../report/contamination.rst",
                    category="Data", subcategory="training problems",
                    labels={"dataset": "{dataset}", "what": "contamination"}),
    log:
        f"{RESULTS}/logs/contamination/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/timings/contamination/{{dataset}}.tsv"
    params:
        ngram=config["decontamination_ngram"],
    resources:
        slurm_partition=RES["cpu_partition"],
        slurm_account=RES["account"],
        runtime=scaled(RES["cpu_runtime_min"]),
        mem_mb=scaled_mem(RES["cpu_mem_mb"]),
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/contamination.py"


rule drop_contaminated:
    input:
        problems=f"{RESULTS}/problems/{{dataset}}.parquet",
        report=f"{RESULTS}/contamination/{{dataset}}.json",
    output:
        f"{RESULTS}/problems/{{dataset}}.decontaminated.parquet",
    log:
        f"{RESULTS}/logs/drop_contaminated/{{dataset}}.log",
    resources:
        slurm_partition=RES["cpu_partition"],
        slurm_account=RES["account"],
        runtime=scaled(RES["cpu_runtime_min"]),
        mem_mb=scaled_mem(RES["cpu_mem_mb"]),
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/drop_contaminated.py"
