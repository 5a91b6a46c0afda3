# Weighted SFT with TRL: the method's objective from mindthegap.objectives (sft | dft | is | power | asft | proximal)
# and its arguments reach the job in the hparams param, so changing either retrains. One process on one GPU;
# `accelerate launch` (one process per GPU, envs/accelerate/<training_strategy>.yaml) on several; `srun` + one
# `accelerate launch` per node on several nodes (src/mindthegap/launch.py). Checkpoints go to a work directory
# outside the declared output, so a requeued or retried job resumes from its last checkpoint; the final model is
# then published as the output. The process layout (GPUs × nodes, per-device batch, accumulation) is a param:
# another layout retrains.


rule train:
    input:
        dataset=training_dataset,
        model=model_input,
    output:
        directory(f"{RESULTS}/checkpoints/{{model}}/{{method}}"),
    log:
        f"{RESULTS}/logs/train/{{model}}/{{method}}.log",
    benchmark:
        f"{RESULTS}/timings/train/{{model}}/{{method}}.tsv"
    params:
        model=model_path,
        revision=model_revision,
        hparams=training_hparams_json,
        layout=training_layout,
        work_dir=f"{RESULTS}/work/checkpoints/{{model}}/{{method}}",
    threads: RES["training_threads"]
    resources:
        **training_resources(),
    conda:
        "../envs/training.yaml"
    script:
        "../scripts/train.py"
