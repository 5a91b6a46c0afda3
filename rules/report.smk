# Per-model results table: methods x benchmarks + average (the harness's mean_acc and the exact avg@n, %) beside
# the paper's numbers, sample counts and training weights, as Markdown, CSV and LaTeX.

PAPER_RESULTS = f"{workflow.basedir}/data/paper/main_results.csv"  # the paper's table (data/paper/PROVENANCE.md)


rule report:
    input:
        unpack(report_inputs),
        paper=PAPER_RESULTS,
    output:
        markdown=report(f"{RESULTS}/tables/{{model}}.md", caption="../report/table.rst", category="Results"),
        csv=f"{RESULTS}/tables/{{model}}.csv",
        latex=f"{RESULTS}/tables/{{model}}.tex",
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


rule manifest:
    input:
        expand(f"{RESULTS}/tables/{{model}}.csv", model=list(config["models"])),
    output:
        f"{RESULTS}/manifest.json",
    log:
        f"{RESULTS}/logs/manifest.log",
    localrule: True
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/manifest.py"
