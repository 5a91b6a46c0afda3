# The policy of the round (round 1: the base model; round r: a round r-1 checkpoint) samples k solutions per problem (self), or re-solves its failures with the expert
# solution as a hint (guided). One GPU job per shard; resumable from the problems already written (vLLM streams
# the shard and writes problems as they finish: benchmarks/chunking/). Prompt + new tokens fit the model's
# max_model_len; a prompt that does not fit is recorded as finish_reason "prompt_too_long", not sampled.


rule sample:
    input:
        unpack(sample_inputs),
    output:
        samples_file(),
    log:
        f"{RESULTS}/logs/sample/{{model}}/round{{round}}/{{phase}}/{{scatteritem}}.log",
    benchmark:
        f"{RESULTS}/timings/sample/{{model}}/round{{round}}/{{phase}}/{{scatteritem}}.tsv"
    params:
        model=policy_path,
        revision=policy_revision,
        backend=config["sampling"]["backend"],
        backend_options=sampling_backend_options,
        sampling=sampling_params,
        prompt=prompt_spec,
        chunk_size=config["sampling"]["chunk_size"],
    threads: 2
    resources:
        gpu=sampling_gpus("sampling"),
        gpu_model=RES["gpu_model"],
        tasks_per_gpu=0,
        slurm_extra=requeue_flag(),  # resumable: SLURM may requeue it (other rules: --no-requeue)
        slurm_partition=RES["gpu_partition"],
        slurm_account=RES["account"],
        runtime=scaled(RES["sampling_runtime_min"]),
        mem_mb=scaled_mem(RES["gpu_mem_mb"]),
    conda:
        "../envs/sampling.yaml"
    script:
        "../scripts/sample.py"
