# Per-model results table: methods x benchmarks + average (avg@n, %), as Markdown, CSV and LaTeX.


rule report:
    input:
        unpack(report_inputs),
    output:
        markdown=report(f"{RESULTS}/tables/{{model}}.md", caption="../report/table.rst", category="Results"),
        csv=f"{RESULTS}/tables/{{model}}.csv",
        latex=f"{RESULTS}/tables/{{model}}.tex",
    log:
        f"{RESULTS}/logs/report/{{model}}.log",
    params:
        methods=method_labels(),
        benchmarks=list(config["benchmarks"]),
        n=config["evaluation"]["n"],
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
