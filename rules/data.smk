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
