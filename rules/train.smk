# Weighted SFT with TRL: the method's objective from mindthegap.objectives (sft | dft | is | power | asft | proximal)
# and its arguments reach the job in the hparams param, so changing either retrains. One process on one GPU;
# `accelerate launch` (one process per GPU, envs/accelerate/<training_strategy>.yaml) on several; `srun` + one
# `accelerate launch` per node on several nodes (src/mindthegap/launch.py). Checkpoints go to a work directory
# outside the declared output, so a requeued or retried job resumes from its last checkpoint; the final model is
# then published as the output. The process layout (GPUs × nodes, per-device batch, accumulation) is a param:
# another layout retrains. One job per (round, method, seed): the seed is in the hyper-parameters; round r >= 2
# starts from the base model or from the same method's round r-1 checkpoint (`rewrite.round_init`; mindthegap.rounds).


rule train:
    input:
        dataset=training_dataset,
        model=training_init_input,
    output:
        directory(checkpoint_dir()),
    log:
        f"{RESULTS}/logs/train/{{model}}/round{{round}}/{{method}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/timings/train/{{model}}/round{{round}}/{{method}}/seed{{seed}}.tsv"
    params:
        model=training_init_path,
        revision=training_init_revision,
        hparams=training_hparams_json,
        layout=training_layout,
        work_dir=f"{RESULTS}/work/checkpoints/{{model}}/round{{round}}/{{method}}/seed{{seed}}",
    threads: RES["training_threads"]
    resources:
        **training_resources(),
    conda:
        "../envs/training.yaml"
    script:
        "../scripts/train.py"
