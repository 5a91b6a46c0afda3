"""The miniature experiment (`make experiment`): the demo's workflow under several seeds, aggregated.

Each seed k runs the whole workflow of config/demo.yaml through Snakemake into its own results directory, with
overrides of every seed that is not the base model's: the training problems (data), the self and guided
samples and the choice among correct ones (sampling), the training order and initialisation of the heads
(training) and the evaluation samples. The base model (its pre-training seed) and the benchmark stay fixed, as a
hub model and a benchmark do in the paper.

Then, per method: accuracy over seeds and samples with a hierarchical bootstrap interval (seeds resampled, then
benchmark problems within each seed), and the paired difference to the methods the paper compares (DR+SFT vs
SFT, DR+DFT vs DFT) with the same draws for both sides. Per source: the policy gap under the base model (mean
token log-prob of the kept response vs the expert's solution: the policy-gap stage's rows.parquet), and the
variance of the token weights during training (training_log.json's weight_var/<source>). Per method: how far
training moved the policy (the stage's scores under each checkpoint minus the base model's).
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from mindthegap.io import write_json, write_text
from mindthegap.rounds import run_id

REPO = Path(__file__).resolve().parents[2]
OUT = Path("results/experiment")
SOURCES = ("self", "guided", "expert")
# The paper's claims, as (ours, baseline, at least): DR+SFT above SFT; DR+DFT at least DFT.
COMPARISONS = (("dr_sft", "sft", "above"), ("dr_dft", "dft", "at least"))


# --- running the seeds ---------------------------------------------------------------------------------------


def seed_overrides(config: dict[str, Any], seed: int, results_dir: str) -> dict[str, Any]:
    """The `--config` values of one seed: its results directory and every seed but the base model's, offset by
    `seed` from the config's own (seed 0 is the config as it is)."""
    sampling = config["sampling"]
    return {
        "results_dir": results_dir,
        "problems": {"seed": config["problems"]["seed"] + seed},
        "sampling": {"self": {"seed": sampling["self"]["seed"] + 2 * seed},
                     "guided": {"seed": sampling["guided"]["seed"] + 2 * seed}},
        "rewrite": {"seed": config["rewrite"]["seed"] + seed},
        "training": {"seeds": [s + seed for s in config["training"]["seeds"]]},
        "evaluation": {"seed": config["evaluation"]["seed"] + seed},
    }


def seed_config(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The config with one seed's overrides merged in key by key. Written to a file and passed as --configfile:
    Snakemake parses nested `--config` values with YAML's BaseLoader (every number a string), which the strict
    schema rightly rejects."""
    merged = copy.deepcopy(config)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = seed_config(merged[key], value)
        else:
            merged[key] = value
    return merged


def shared_base_model(config: dict[str, Any], first_run: Path) -> dict[str, Any]:
    """The config with its locally built models taken from the first seed's run (a local directory), so that
    every seed fine-tunes the same base model and pre-trains it once."""
    models = {}
    for name, spec in config["models"].items():
        if "build" in spec:
            spec = {**{k: v for k, v in spec.items() if k != "build"},
                    "path": str((first_run / "models" / name).resolve())}
        models[name] = spec
    return {**config, "models": models}


def run_seed(config: dict[str, Any], seed: int, out: Path, cores: int) -> float:
    """One seed's workflow (resumes where it stopped); its wall time in seconds. Seeds after the first fine-tune
    the first seed's base model (it must have run)."""
    configfile = out / f"seed{seed}.yaml"
    configfile.parent.mkdir(parents=True, exist_ok=True)
    seeded = seed_config(config, seed_overrides(config, seed, str(out / f"seed{seed}")))
    if seed:
        seeded = shared_base_model(seeded, out / "seed0")
    write_text(yaml.safe_dump(seeded, sort_keys=False), configfile)
    command = [str(Path(sys.executable).with_name("snakemake")), "--snakefile", str(REPO / "Snakefile"),
               "--configfile", str(configfile), "--profile", str(REPO / "profiles/local"), "--cores", str(cores)]
    start = time.monotonic()
    subprocess.run(command, check=True)
    return time.monotonic() - start


# --- accuracy ------------------------------------------------------------------------------------------------


def round1_run(method: str, training_seed: int) -> str:
    """The run id (mindthegap.rounds) the experiment reads of a method: round 1 (the paper's offline rewriting),
    the seed's first training seed; the base model is `base`."""
    return run_id(1, method, training_seed)


def correctness(run_dir: Path, model: str, run: str, benchmarks: list[str]) -> np.ndarray:
    """Per benchmark problem (all benchmarks in turn), the fraction of correct samples of one run (`base`,
    `round{r}/{method}/seed{s}`): shape (problems,)."""
    rows = []
    for bench in benchmarks:
        verdicts = pd.read_parquet(run_dir / f"eval/{model}/{run}/{bench}/verdicts.parquet",
                                   columns=["problem_id", "correct"])
        per_problem = verdicts.groupby("problem_id", sort=True)["correct"].mean()
        rows.append(per_problem.to_numpy(dtype=float))
    return np.concatenate(rows)


def hierarchical_bootstrap(per_seed: dict[str, list[np.ndarray]], *, resamples: int = 2000, level: float = 0.95,
                           seed: int = 0) -> dict[str, np.ndarray]:
    """Bootstrap means of each method: seeds drawn with replacement, then problems within each drawn seed, the
    same draws for every method (so differences between methods are paired). Returns resamples per method."""
    rng = np.random.default_rng(seed)
    methods = list(per_seed)
    seeds, problems = len(per_seed[methods[0]]), len(per_seed[methods[0]][0])
    draws = {method: np.empty(resamples) for method in methods}
    for r in range(resamples):
        chosen = rng.integers(seeds, size=seeds)
        picks = rng.integers(problems, size=(seeds, problems))
        for method in methods:
            draws[method][r] = np.mean([per_seed[method][s][picks[i]].mean() for i, s in enumerate(chosen)])
    return draws


def interval(values: np.ndarray, level: float = 0.95) -> list[float]:
    return [float(np.quantile(values, (1 - level) / 2)), float(np.quantile(values, (1 + level) / 2))]


def accuracy_summary(per_seed: dict[str, list[np.ndarray]]) -> dict[str, Any]:
    """Per method: mean accuracy (%), per-seed accuracies, the hierarchical 95 % interval; and the paired
    differences of the paper's comparisons."""
    draws = hierarchical_bootstrap(per_seed)
    methods = {method: {"accuracy": 100 * float(np.mean([a.mean() for a in arrays])),
                        "per_seed": [100 * float(a.mean()) for a in arrays],
                        "ci95": [100 * v for v in interval(draws[method])]}
               for method, arrays in per_seed.items()}
    comparisons = {}
    for ours, baseline, claim in COMPARISONS:
        if ours in per_seed and baseline in per_seed:
            diff = 100 * (draws[ours] - draws[baseline])
            comparisons[f"{ours}-{baseline}"] = {
                "difference": methods[ours]["accuracy"] - methods[baseline]["accuracy"],
                "ci95": interval(diff), "ours": ours, "baseline": baseline, "claim": claim,
                "holds": verdict(interval(diff), claim)}
    return {"methods": methods, "comparisons": comparisons}


def verdict(ci: list[float], claim: str) -> str:
    """'yes' when the interval supports the claim, 'no' when it contradicts it, else 'undecided'."""
    low, high = ci
    if claim == "above":
        return "yes" if low > 0 else "no" if high < 0 else "undecided"
    return "yes" if low > 0 or (low <= 0 <= high) else "no"  # "at least": not significantly below


# --- the policy gap and the weights --------------------------------------------------------------------------


def gap_by_source(rows: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per source (and all rows) of the policy-gap stage's rows.parquet: count, mean kept and expert token
    log-prob under the base model, and their difference (how much of the gap the kept response closes)."""
    groups = {source: rows[rows["source"] == source] for source in SOURCES}
    groups["all"] = rows
    return {source: {"rows": int(len(group)),
                     "kept_logprob_mean": float(group["kept_logprob_mean"].mean()) if len(group) else None,
                     "expert_logprob_mean": float(group["expert_logprob_mean"].mean()) if len(group) else None,
                     "logratio": float((group["kept_logprob_mean"] - group["expert_logprob_mean"]).mean())
                     if len(group) else None}
            for source, group in groups.items()}


def weight_variance(training_log: str | Path) -> dict[str, float]:
    """Per source, the mean over logging windows of the token-weight variance (weight_var/<source>)."""
    history = json.loads(Path(training_log).read_text())["log_history"]
    out = {}
    for source in SOURCES:
        values = [entry[f"weight_var/{source}"] for entry in history if f"weight_var/{source}" in entry]
        if values:
            out[source] = float(np.mean(values))
    return out


# --- the report ----------------------------------------------------------------------------------------------


def aggregate(out: Path, config: dict[str, Any], seeds: list[int], wall: dict[str, float]) -> dict[str, Any]:
    model = next(iter(config["models"]))
    benchmarks = list(config["benchmarks"])
    methods = [m for m in config["methods"]
               if config.get("extensions", False) or not config["methods"][m].get("extension", False)]
    runs = {seed: out / f"seed{seed}" for seed in seeds}
    # each seed k trains with training.seeds[0] + k (seed_overrides); its round-1 runs are what the paper compares
    trained = {seed: config["training"]["seeds"][0] + seed for seed in seeds}
    per_seed = {method: [correctness(runs[s], model, round1_run(method, trained[s]), benchmarks) for s in seeds]
                for method in methods}
    gaps, sources, drift = {}, {}, {}
    for seed, run in runs.items():
        rows = pd.read_parquet(run / f"policy_gap/{model}/rows.parquet")
        gaps[seed] = gap_by_source(rows)
        sources[seed] = {s: int((rows["source"] == s).sum()) for s in SOURCES}
        for path in sorted((run / f"policy_gap/{model}/checkpoints/round1").glob(f"*/seed{trained[seed]}.parquet")):
            shift = pd.read_parquet(path, columns=["kept_logprob_mean_delta", "expert_logprob_mean_delta"])
            drift.setdefault(path.parent.name, {})[seed] = {key.split("_")[0]: float(shift[key].mean())
                                                     for key in shift.columns}
    weights = {method: {seed: weight_variance(runs[seed] / f"checkpoints/{model}/{round1_run(method, trained[seed])}"
                                              / "training_log.json")
                        for seed in seeds}
               for method in methods if "data" in config["methods"][method]}
    return {"model": model, "benchmarks": benchmarks, "seeds": seeds,
            "problems_per_seed": int(len(per_seed[methods[0]][0])), "samples_per_problem": config["evaluation"]["n"],
            "labels": {m: config["methods"][m]["label"] for m in methods},
            "accuracy": accuracy_summary(per_seed), "sources": sources, "policy_gap": gaps,
            "weight_var": weights, "drift": drift, "wall_s": wall}


def _mean_over_seeds(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def markdown(summary: dict[str, Any]) -> str:
    """The experiment's tables: accuracy per method and seed, the paper's comparisons, the policy gap and the
    weight variance per source."""
    seeds, labels, acc = summary["seeds"], summary["labels"], summary["accuracy"]
    lines = [f"# Miniature experiment: {len(seeds)} seeds × {summary['problems_per_seed']} problems × "
             f"{summary['samples_per_problem']} samples per method", "",
             "Accuracy (%, avg@n); interval: 95 % hierarchical bootstrap over seeds and problems.", "",
             "| Method | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | 95 % interval |",
             "|---|" + "---|" * (len(seeds) + 2)]
    for method, row in acc["methods"].items():
        lines.append(f"| {labels[method]} | " + " | ".join(f"{v:.1f}" for v in row["per_seed"])
                     + f" | {row['accuracy']:.1f} | [{row['ci95'][0]:.1f}, {row['ci95'][1]:.1f}] |")
    lines += ["", "| Paper's claim | difference (points) | 95 % interval | holds |", "|---|---|---|---|"]
    for comparison in acc["comparisons"].values():
        claim = f"{labels[comparison['ours']]} {comparison['claim']} {labels[comparison['baseline']]}"
        lines.append(f"| {claim} | {comparison['difference']:+.1f} | "
                     f"[{comparison['ci95'][0]:+.1f}, {comparison['ci95'][1]:+.1f}] | {comparison['holds']} |")
    lines += ["", "Policy gap under the base model (mean token log-prob, nats; mean over seeds) of the rewritten "
              "dataset's rows:", "", "| Source | rows | kept | expert | kept − expert |", "|---|---|---|---|---|"]
    for source in (*SOURCES, "all"):
        cells = [summary["policy_gap"][s][source] for s in seeds]
        lines.append(f"| {source} | {sum(c['rows'] for c in cells)} | "
                     + " | ".join(fmt(_mean_over_seeds([c[key] for c in cells]))
                                  for key in ("kept_logprob_mean", "expert_logprob_mean", "logratio")) + " |")
    shrink = _mean_over_seeds([summary["policy_gap"][s]["all"]["logratio"] for s in seeds])
    lines += ["", f"Rewriting shrinks the policy gap by {fmt(shrink)} nats a token: the mean token log-prob of the "
              "training responses under the base model, rewritten dataset minus the expert dataset (row 'all')."]
    lines += ["", "Token-weight variance during training (mean over logging windows and seeds):", "",
              "| Method | " + " | ".join(SOURCES) + " |", "|---|" + "---|" * len(SOURCES)]
    for method, by_seed in summary["weight_var"].items():
        lines.append(f"| {labels[method]} | " + " | ".join(
            fmt(_mean_over_seeds([by_seed[s].get(source) for s in seeds])) for source in SOURCES) + " |")
    lines += ["", "How far training moved the policy: change of the mean token log-prob of the rewritten dataset's "
              "kept responses and of the expert solutions, checkpoint minus base model (mean over seeds):", "",
              "| Method | kept | expert |", "|---|---|---|"]
    for method, by_seed in summary["drift"].items():
        lines.append(f"| {labels.get(method, method)} | " + " | ".join(
            fmt(_mean_over_seeds([by_seed[s].get(key) for s in by_seed])) for key in ("kept", "expert")) + " |")
    lines += ["", "Wall time: " + ", ".join(f"{key} {value:.0f} s" for key, value in summary["wall_s"].items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default=str(REPO / "config/demo.yaml"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--only-seed", type=int, help="run this one seed's workflow, no aggregation")
    args = parser.parse_args(argv)
    out, configfile = Path(args.out), Path(args.configfile)
    config = yaml.safe_load(configfile.read_text())
    seeds = list(range(args.seeds))
    if args.only_seed is not None:
        run_seed(config, args.only_seed, out, args.cores)
        return 0
    start, wall = time.monotonic(), {}
    for seed in seeds:
        wall[f"seed{seed}"] = run_seed(config, seed, out, args.cores)
    summary = aggregate(out, config, seeds, wall)
    summary["wall_s"]["total"] = time.monotonic() - start
    write_json(summary, out / "summary.json")
    write_text(markdown(summary), out / "table.md")
    print(markdown(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
