# The policy gap (the release's get_probability.py): every row of round 1's rewritten dataset (the paper's offline
# rewriting), its kept response and the
# expert solution of its problem scored teacher-forced under the base model on the training prompt, with the
# token-level log-ratio to the stored behaviour policy. Per-row table + per-source summary (mindthegap.gap).
# A GPU job with the sampling backend (vLLM at scale); resumable from the chunks of rows already scored.
# Optionally (policy_gap.checkpoints) the same rows under each trained run's checkpoint ({run} = round{r}/{method}/seed{s}):
# how far each method moved the policy.


rule policy_gap:
    input:
        dataset=dataset_file(round=1, variant="rewritten"),
        problems=problems_file(),
        model=model_input,
    output:
        rows=policy_gap_file(name="rows.parquet"),
        summary=policy_gap_file(name="summary.json"),
    log:
        f"{RESULTS}/logs/policy_gap/{{model}}.log",
    benchmark:
        f"{RESULTS}/timings/policy_gap/{{model}}.tsv"
    params:
        model=model_path,
        revision=model_revision,
        backend=config["sampling"]["backend"],
        backend_options=policy_gap_backend_options,
        chunk_size=config["policy_gap"]["chunk_size"],
        work=f"{RESULTS}/work/policy_gap/{{model}}/base",
    threads: 2
    resources:
        **scoring_resources(),
    conda:
        "../envs/sampling.yaml"
    script:
        "../scripts/policy_gap.py"


rule policy_gap_checkpoint:
    input:
        dataset=dataset_file(round=1, variant="rewritten"),
        problems=problems_file(),
        model=run_model_input,
        base_rows=policy_gap_file(name="rows.parquet"),
    output:
        rows=policy_gap_checkpoint_file(ext="parquet"),
        summary=policy_gap_checkpoint_file(ext="json"),
    log:
        f"{RESULTS}/logs/policy_gap_checkpoint/{{model}}/{{run}}.log",
    benchmark:
        f"{RESULTS}/timings/policy_gap_checkpoint/{{model}}/{{run}}.tsv"
    params:
        model=run_model_path,
        revision=run_model_revision,
        backend=config["sampling"]["backend"],
        backend_options=policy_gap_backend_options,
        chunk_size=config["policy_gap"]["chunk_size"],
        work=f"{RESULTS}/work/policy_gap/{{model}}/{{run}}",
    threads: 2
    resources:
        **scoring_resources(),
    conda:
        "../envs/sampling.yaml"
    script:
        "../scripts/policy_gap.py"
