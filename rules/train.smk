# Weighted SFT with TRL (loss sft | dft | is). Checkpoints go to a work directory outside the declared output, so a
# requeued or retried job resumes from its last checkpoint; the final model is then published as the output.


rule train:
    input:
        dataset=training_dataset,
        model=model_input,
    output:
        directory(f"{RESULTS}/checkpoints/{{model}}/{{method}}"),
    log:
        f"{RESULTS}/logs/train/{{model}}/{{method}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{model}}/{{method}}.tsv"
    params:
        model=model_path,
        revision=model_revision,
        hparams=training_hparams_json,
        work_dir=f"{RESULTS}/work/checkpoints/{{model}}/{{method}}",
    threads: 2
    resources:
        gpu=RES["training_gpus"],
        gpu_model=RES["gpu_model"],
        tasks_per_gpu=0,
        slurm_partition=RES["gpu_partition"],
        slurm_account=RES["account"],
        runtime=scaled(RES["training_runtime_min"]),
        mem_mb=scaled_mem(RES["gpu_mem_mb"]),
    conda:
        "../envs/training.yaml"
    script:
        "../scripts/train.py"
