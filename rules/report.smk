# What a reader of the reproduction looks at, all wrapped by report() for `snakemake --report`: per model, the
# results tables (methods x benchmarks beside the paper's numbers; the evaluation in detail; the training data per
# source) as Markdown, CSV, LaTeX and HTML, the figures as PNG (the report) and SVG (vector), and the manifest.

PAPER_RESULTS = f"{workflow.basedir}/data/paper/main_results.csv"  # the paper's table (data/paper/PROVENANCE.md)


rule report:
    input:
        unpack(report_inputs),
        paper=PAPER_RESULTS,
    output:
        markdown=f"{RESULTS}/tables/{{model}}.md",
        csv=f"{RESULTS}/tables/{{model}}.csv",
        latex=f"{RESULTS}/tables/{{model}}.tex",
        html=report(f"{RESULTS}/tables/{{model}}.html", caption="../report/table.rst", category="Evaluation",
                    subcategory="{model}", labels=report_labels("results table")),
        rounds_csv=f"{RESULTS}/tables/{{model}}.rounds.csv",
        rounds_json=f"{RESULTS}/tables/{{model}}.rounds.json",
    log:
        f"{RESULTS}/logs/report/{{model}}.log",
    params:
        methods=method_labels(),
        method_specs=method_specs(),
        extensions=extension_methods(),
        model_names=model_names,
        benchmarks=list(config["benchmarks"]),
        checkpoint_runs=report_checkpoint_runs,
        stats_rounds=report_stats_rounds,
        rounds=report_rounds,
    localrule: True
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/report.py"


rule evaluation_table:
    input:
        metrics=evaluation_metric_files,
        verdicts=evaluation_verdict_files,
    output:
        markdown=f"{RESULTS}/tables/{{model}}.evaluation.md",
        csv=f"{RESULTS}/tables/{{model}}.evaluation.csv",
        latex=f"{RESULTS}/tables/{{model}}.evaluation.tex",
        html=report(f"{RESULTS}/tables/{{model}}.evaluation.html", caption="../report/evaluation_table.rst",
                    category="Evaluation", subcategory="{model}", labels=report_labels("evaluation table")),
    log:
        f"{RESULTS}/logs/report/{{model}}.evaluation.log",
    params:
        methods=run_labels(),
        extensions=extension_runs(),
        benchmarks=list(config["benchmarks"]),
    localrule: True
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/tables.py"


rule source_table:
    input:
        unpack(source_inputs),
    output:
        markdown=f"{RESULTS}/tables/{{model}}.sources.md",
        csv=f"{RESULTS}/tables/{{model}}.sources.csv",
        latex=f"{RESULTS}/tables/{{model}}.sources.tex",
        html=report(f"{RESULTS}/tables/{{model}}.sources.html", caption="../report/source_table.rst",
                    category="Data", subcategory="{model}", labels=report_labels("data per source")),
    log:
        f"{RESULTS}/logs/report/{{model}}.sources.log",
    params:
        variants=source_labels(),
    localrule: True
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/tables.py"


rule figure_accuracy:
    input:
        metrics=evaluation_metric_files,
        paper=PAPER_RESULTS,
    output:
        png=report(f"{RESULTS}/figures/{{model}}/accuracy.png", caption="../report/accuracy.rst",
                   category="Evaluation", subcategory="{model}", labels=report_labels("accuracy")),
        vector=f"{RESULTS}/figures/{{model}}/accuracy.svg",
    log:
        f"{RESULTS}/logs/figures/{{model}}.accuracy.log",
    params:
        methods=method_labels(),
        extensions=extension_methods(),
        runs=run_labels(),
        run_extensions=extension_runs(),
        model_names=model_names,
        benchmarks=list(config["benchmarks"]),
    localrule: True
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/figures.py"


rule figure_pass_at_k:
    input:
        verdicts=evaluation_verdict_files,
    output:
        png=report(f"{RESULTS}/figures/{{model}}/pass_at_k.png", caption="../report/pass_at_k.rst",
                   category="Evaluation", subcategory="{model}", labels=report_labels("pass@k and maj@k")),
        vector=f"{RESULTS}/figures/{{model}}/pass_at_k.svg",
    log:
        f"{RESULTS}/logs/figures/{{model}}.pass_at_k.log",
    params:
        runs=run_labels(),
        run_extensions=extension_runs(),
        benchmarks=list(config["benchmarks"]),
    localrule: True
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/figures.py"


rule figure_sources:
    input:
        stats=dataset_stats_files,
    output:
        png=report(f"{RESULTS}/figures/{{model}}/sources.png", caption="../report/sources.rst",
                   category="Rewriting", subcategory="{model}", labels=report_labels("source composition")),
        vector=f"{RESULTS}/figures/{{model}}/sources.svg",
    log:
        f"{RESULTS}/logs/figures/{{model}}.sources.log",
    params:
        variants=source_labels(),
    localrule: True
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/figures.py"


rule figure_policy_gap:
    input:
        policy_gap=policy_gap_input,
        checkpoints=policy_gap_checkpoint_summaries,
    output:
        png=report(f"{RESULTS}/figures/{{model}}/policy_gap.png", caption="../report/policy_gap.rst",
                   category="Policy gap", subcategory="{model}", labels=report_labels("policy gap")),
        vector=f"{RESULTS}/figures/{{model}}/policy_gap.svg",
    log:
        f"{RESULTS}/logs/figures/{{model}}.policy_gap.log",
    params:
        runs=run_labels(),
        run_extensions=extension_runs(),
        checkpoint_runs=policy_gap_checkpoint_runs,
    localrule: True
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/figures.py"


rule figure_training:
    input:
        checkpoints=trained_checkpoints,
    output:
        png=report(f"{RESULTS}/figures/{{model}}/training.png", caption="../report/training.rst",
                   category="Training", subcategory="{model}", labels=report_labels("training curves")),
        vector=f"{RESULTS}/figures/{{model}}/training.svg",
    log:
        f"{RESULTS}/logs/figures/{{model}}.training.log",
    params:
        runs=run_labels(),
        run_extensions=extension_runs(),
        checkpoint_runs=report_checkpoint_runs,
    localrule: True
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/figures.py"


rule manifest:
    input:
        expand(f"{RESULTS}/tables/{{model}}.csv", model=list(config["models"])),
    output:
        report(f"{RESULTS}/manifest.json", caption="../report/manifest.rst", category="Provenance",
               labels={"file": "manifest.json"}),
    log:
        f"{RESULTS}/logs/manifest.log",
    localrule: True
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/manifest.py"
