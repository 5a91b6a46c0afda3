# n samples per benchmark problem from the base model or a checkpoint, judged; avg@n per benchmark.
# One sampling job per (model, run, shard) covers every benchmark with one model load (mindthegap.evaluation);
# one CPU job per (model, run) judges them all; verdicts and metrics stay per benchmark.


rule evaluate_sample:
    input:
        benchmarks=expand(f"{RESULTS}/benchmarks/{{bench}}.parquet", bench=list(config["benchmarks"])),
        model=run_model_input,
    output:
        **evaluation_sample_outputs(),
    log:
        f"{RESULTS}/logs/evaluate_sample/{{model}}/{{run}}/{{scatteritem}}.log",
    benchmark:
        f"{RESULTS}/timings/evaluate_sample/{{model}}/{{run}}/{{scatteritem}}.tsv"
    params:
        model=run_model_path,
        revision=run_model_revision,
        backend=config["evaluation"]["backend"],
        backend_options=evaluation_backend_options,
        sampling=evaluation_params,
        prompt=evaluation_prompt,
        chunk_size=config["evaluation"]["chunk_size"],
        benchmarks=list(config["benchmarks"]),
        work=f"{RESULTS}/work/eval/{{model}}/{{run}}/{{scatteritem}}.parquet",
    threads: 2
    resources:
        gpu=sampling_gpus("evaluation"),
        gpu_model=RES["gpu_model"],
        tasks_per_gpu=0,
        slurm_extra=requeue_flag(),  # resumable: SLURM may requeue it (other rules: --no-requeue)
        slurm_partition=RES["gpu_partition"],
        slurm_account=RES["account"],
        runtime=scaled(RES["evaluation_runtime_min"]),
        mem_mb=scaled_mem(RES["gpu_mem_mb"]),
    conda:
        "../envs/sampling.yaml"
    script:
        "../scripts/evaluate_sample.py"


rule evaluate_judge:
    input:
        unpack(evaluation_judge_inputs),
    output:
        **evaluation_judge_outputs(),
    log:
        f"{RESULTS}/logs/evaluate_judge/{{model}}/{{run}}.log",
    params:
        benchmarks=list(config["benchmarks"]),
        run=run_fields,
        timeout=config["grader"]["timeout"],
        stop_strings=harness_stop_strings(),
    threads: config["grader"]["workers"]
    resources:
        slurm_partition=RES["cpu_partition"],
        slurm_account=RES["account"],
        runtime=scaled(RES["cpu_runtime_min"]),
        mem_mb=scaled_mem(RES["cpu_mem_mb"]),
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/evaluate_judge.py"
