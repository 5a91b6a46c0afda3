"""Results tables: methods x benchmarks (+ average) of avg@n, as Markdown, CSV and LaTeX, from metrics.json files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from mindthegap import metrics


def evaluation_metrics(judged: pd.DataFrame, *, model: str, method: str, benchmark: str) -> dict[str, Any]:
    """avg@n and companions for one (run, benchmark) from its judged samples."""
    groups = [g.sort_values("sample_idx") for _, g in judged.groupby("problem_id", sort=True)]
    correct = [g["correct"].astype(bool).tolist() for g in groups]
    answers = [g["extracted"].tolist() for g in groups]
    n = min((len(c) for c in correct), default=0)
    low, high = metrics.bootstrap_ci(correct)
    return {
        "model": model, "method": method, "benchmark": benchmark, "problems": len(groups), "n": n,
        f"avg@{n}": metrics.avg_at_n(correct), "accuracy": metrics.avg_at_n(correct),
        f"pass@{n}": metrics.mean_pass_at_k(correct, n) if n else float("nan"),
        f"maj@{n}": metrics.maj_at_k(answers, correct, n) if n else float("nan"),
        "ci95": [low, high],
        "grader_status": dict(sorted(Counter(judged["status"]).items())),
        "truncated": int((judged["finish_reason"] == "length").sum()),
    }


def results_table(metric_files: list[str | Path], methods: dict[str, str], benchmarks: list[str]) -> pd.DataFrame:
    """Rows: methods in the given order (key -> label); columns: benchmarks then Average; values: avg@n in %."""
    cells: dict[tuple[str, str], float] = {}
    for path in metric_files:
        record = json.loads(Path(path).read_text())
        cells[(record["method"], record["benchmark"])] = 100 * record["accuracy"]
    rows = []
    for method, label in methods.items():
        values = {bench: cells.get((method, bench), float("nan")) for bench in benchmarks}
        values["Average"] = sum(values.values()) / len(benchmarks)
        rows.append({"Method": label, **values})
    return pd.DataFrame(rows).set_index("Method")


def write_tables(table: pd.DataFrame, model: str, n: int, markdown: str | Path, csv: str | Path,
                 latex: str | Path, diagnostics: pd.DataFrame | None = None) -> None:
    from mindthegap.io import write_text

    write_text(table.round(2).to_csv(), csv)
    text = f"### {model}: avg@{n} accuracy (%)\n\n" + table.to_markdown(floatfmt=".1f") + "\n"
    if diagnostics is not None and len(diagnostics):
        text += ("\n### Training: token weights per source (w = 1 for SFT; p for DFT; clipped ratio for IS)\n\n"
                 + diagnostics.to_markdown(floatfmt=".4g") + "\n")
    write_text(text, markdown)
    write_text(table.to_latex(float_format="%.1f", caption=f"{model}: avg@{n} accuracy (\\%)"), latex)


def training_diagnostics(checkpoints: dict[str, str | Path], labels: dict[str, str]) -> pd.DataFrame:
    """Per trained method: steps, mean training loss, and the token-weight statistics per source (averaged over
    the logged steps). Under IS, the weight variance per source is the quantity the paper says rewriting shrinks."""
    rows = []
    for method, directory in checkpoints.items():
        record = json.loads((Path(directory) / "training_log.json").read_text())
        logged = [entry for entry in record["log_history"] if "loss" in entry]
        row = {"Method": labels[method], "steps": record["summary"]["global_steps"],
               "train loss": record["summary"]["train_loss"]}
        keys = sorted({key for entry in logged for key in entry if key.startswith("weight_")})
        for key in keys:
            values = [entry[key] for entry in logged if key in entry]
            row[key.replace("weight_", "w ").replace("/", " ")] = sum(values) / len(values)
        rows.append(row)
    return pd.DataFrame(rows).set_index("Method")


PROVENANCE_PACKAGES = ("torch", "transformers", "trl", "accelerate", "datasets", "tokenizers", "sympy",
                       "latex2sympy2", "snakemake", "vllm", "mindthegap")


def provenance(config: dict[str, Any], outputs: list[str], repo: str | Path) -> dict[str, Any]:
    """What produced these results: the config, package versions, the code's git commit, the host."""
    import platform
    import subprocess
    from datetime import datetime, timezone
    from importlib import metadata

    versions = {}
    for package in PROVENANCE_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    git = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True)
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git.stdout.strip() or None, "git_dirty": bool(dirty.stdout.strip()) if git.stdout else None,
        "python": platform.python_version(), "host": platform.node(), "packages": versions,
        "outputs": outputs, "config": config,
    }
