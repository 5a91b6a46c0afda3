"""The miniature experiment (`make experiment`): the demo's workflow under several seeds, aggregated.

The experiment's config is config/experiment.yaml merged key by key over config/demo.yaml (one rewriting round,
the policy gap under every checkpoint, a benchmark sized for power). Each seed k runs the whole workflow through
Snakemake into its own results directory (results/experiment/seed{k}), with every seed that is not the base model's
offset by k: the training problems (data), the self and guided samples and the choice among correct ones
(sampling), the training seed (training order, initialisation) and the evaluation samples. The base model (its
pre-training seed) and the benchmark stay fixed, as a hub model and a benchmark do in the paper: seeds after the
first fine-tune seed 0's pre-trained model, loaded from its directory.

Then, per method: accuracy over seeds and samples with a hierarchical bootstrap interval (seeds resampled, then
benchmark problems within each seed), and the paired difference of the methods the paper compares (DR+SFT vs SFT,
DR+DFT vs DFT) with the same draws for both sides. Per source: the policy gap under the base model (mean token
log-prob of the kept response vs the expert's solution: the policy-gap stage's rows.parquet), and the variance of
the token weights during training (training_log.json's weight_var/<source>). Per method: how far training moved
the policy (the policy-gap stage's scores under each checkpoint minus the base model's).
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
from snakemake.utils import update_config

from mindthegap import demo
from mindthegap.io import write_json, write_text
from mindthegap.rounds import BASE, planned_methods, run_id, trained_methods

REPO = Path(__file__).resolve().parents[2]
OUT = Path("results/experiment")
SOURCES = ("self", "guided", "expert")
ROUND = 1  # the experiment runs the paper's offline rewriting only (config/experiment.yaml: rewrite.rounds 1)
# The paper's claims, as (ours, baseline, claim): DR+SFT above SFT; DR+DFT at least DFT.
COMPARISONS = (("dr_sft", "sft", "above"), ("dr_dft", "dft", "at least"))


# --- the configs of the seeds --------------------------------------------------------------------------------


def merge(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`config` with `overrides` merged in key by key, as Snakemake merges several --configfile
    (snakemake.utils.update_config: nested dicts merged, anything else replaced); `config` is left as it was. Seed
    configs are written to a file and passed as --configfile: Snakemake parses nested `--config` values with YAML's
    BaseLoader (every number a string), which the strict schema rightly rejects."""
    merged = copy.deepcopy(config)
    update_config(merged, copy.deepcopy(overrides))
    return merged


def experiment_config(base: str | Path, overlay: str | Path) -> dict[str, Any]:
    """The experiment's config: the overlay file (config/experiment.yaml) merged over the base (config/demo.yaml)."""
    return merge(yaml.safe_load(Path(base).read_text()), yaml.safe_load(Path(overlay).read_text()) or {})


def training_seed(config: dict[str, Any], seed: int) -> int:
    """The training seed of experiment seed k: the config's first training seed + k (one training seed a run)."""
    return config["training"]["seeds"][0] + seed


def seed_overrides(config: dict[str, Any], seed: int, results_dir: str) -> dict[str, Any]:
    """The overrides of one seed: its results directory and every seed but the base model's and the benchmark's,
    offset by `seed` from the config's own (seed 0 is the config as it is). Self and guided sampling step by 2 so
    that their seeds never coincide across experiment seeds (demo: 0 and 1)."""
    sampling = config["sampling"]
    return {
        "results_dir": results_dir,
        "problems": {"seed": config["problems"]["seed"] + seed},
        "sampling": {"self": {"seed": sampling["self"]["seed"] + 2 * seed},
                     "guided": {"seed": sampling["guided"]["seed"] + 2 * seed}},
        "rewrite": {"seed": config["rewrite"]["seed"] + seed},
        "training": {"seeds": [training_seed(config, seed)]},
        "evaluation": {"seed": config["evaluation"]["seed"] + seed},
    }


def shared_base_model(config: dict[str, Any], first_run: Path) -> dict[str, Any]:
    """The config with its locally built models (`build: demo`) taken from the first seed's run as local
    directories (`path`), so that every seed fine-tunes the same base model and it is pre-trained once."""
    models = {}
    for name, spec in config["models"].items():
        if "build" in spec:
            spec = {**{k: v for k, v in spec.items() if k != "build"},
                    "path": str((first_run / "models" / name).resolve())}
        models[name] = spec
    return {**config, "models": models}


def seed_config(config: dict[str, Any], seed: int, out: Path) -> dict[str, Any]:
    """The whole config of one seed's workflow (results in `out`/seed{k})."""
    seeded = merge(config, seed_overrides(config, seed, str(out / f"seed{seed}")))
    return shared_base_model(seeded, out / "seed0") if seed else seeded


def run_seed(config: dict[str, Any], seed: int, out: Path, cores: int, dry_run: bool = False) -> float:
    """One seed's workflow (resumes where it stopped); its wall time in seconds. Seeds after the first fine-tune
    the first seed's base model (it must have run)."""
    configfile = out / f"seed{seed}.yaml"
    seeded = seed_config(config, seed, out)
    missing = [spec["path"] for name, spec in seeded["models"].items()
               if seed and "build" in config["models"][name] and not Path(spec["path"]).is_dir()]
    if missing and not dry_run:
        raise SystemExit(f"seed {seed} fine-tunes seed 0's pre-trained model, but {missing[0]} does not exist: "
                         "run seed 0 first (--only-seed 0)")
    write_text(yaml.safe_dump(seeded, sort_keys=False), configfile)
    command = [str(Path(sys.executable).with_name("snakemake")), "--snakefile", str(REPO / "Snakefile"),
               "--configfile", str(configfile), "--profile", str(REPO / "profiles/local"), "--cores", str(cores)]
    start = time.monotonic()
    subprocess.run(command + (["-n"] if dry_run else []), check=True)
    return time.monotonic() - start


# --- what the workflow writes (rules/common.smk: eval_dir, checkpoint_dir, policy_gap_file, ...) --------------


def verdicts_file(run_dir: Path, model: str, run: str, bench: str) -> Path:
    return run_dir / f"eval/{model}/{run}/{bench}/verdicts.parquet"


def training_log_file(run_dir: Path, model: str, run: str) -> Path:
    """Written by mindthegap.training into the published checkpoint directory."""
    return run_dir / f"checkpoints/{model}/{run}/training_log.json"


def gap_rows_file(run_dir: Path, model: str) -> Path:
    return run_dir / f"policy_gap/{model}/rows.parquet"


def shift_file(run_dir: Path, model: str, run: str) -> Path:
    """The policy_gap_checkpoint stage's per-row shift (mindthegap.gap.checkpoint_shift)."""
    return run_dir / f"policy_gap/{model}/checkpoints/{run}.parquet"


def run_of(config: dict[str, Any], method: str, seed: int) -> str:
    """The evaluated run of a method in experiment seed k: `base`, or round1/{method}/seed{training seed}."""
    return BASE if method == BASE else run_id(ROUND, method, training_seed(config, seed))


def read_files(out: Path, config: dict[str, Any], seeds: list[int]) -> list[Path]:
    """Every file `aggregate` reads (with policy_gap.checkpoints): what the seeds' workflows must write."""
    model = next(iter(config["models"]))
    files = []
    for seed in seeds:
        run_dir = out / f"seed{seed}"
        files += [verdicts_file(run_dir, model, run_of(config, m, seed), bench)
                  for m in planned_methods(config) for bench in config["benchmarks"]]
        files.append(gap_rows_file(run_dir, model))
        for method in trained_methods(config):
            run = run_of(config, method, seed)
            files += [training_log_file(run_dir, model, run), shift_file(run_dir, model, run)]
    return files


# --- accuracy ------------------------------------------------------------------------------------------------


def correctness(run_dir: Path, model: str, run: str, benchmarks: list[str]) -> np.ndarray:
    """Per benchmark problem (all benchmarks in turn, problems sorted by id), the fraction of correct samples of
    one evaluated run (`base` or round{r}/{method}/seed{s}): shape (problems,)."""
    rows = []
    for bench in benchmarks:
        verdicts = pd.read_parquet(verdicts_file(run_dir, model, run, bench), columns=["problem_id", "correct"])
        per_problem = verdicts.groupby("problem_id", sort=True)["correct"].mean()
        rows.append(per_problem.to_numpy(dtype=float))
    return np.concatenate(rows)


def benchmark_levels(run_dir: Path, config: dict[str, Any]) -> np.ndarray | None:
    """The demo task's level of each benchmark problem, in `correctness`'s order; None unless every benchmark is
    the synthetic arithmetic task."""
    if any(spec.get("source") != "synthetic" for spec in config["benchmarks"].values()):
        return None
    levels = []
    for bench in config["benchmarks"]:
        problems = pd.read_parquet(run_dir / f"benchmarks/{bench}.parquet", columns=["id", "problem"])
        levels.append(problems.sort_values("id")["problem"].map(demo.level_of).to_numpy())
    return np.concatenate(levels)


def accuracy_by_level(per_seed: dict[str, list[np.ndarray]], levels: np.ndarray,
                      resamples: int = 4000) -> dict[str, dict[str, dict[str, Any]]]:
    """Per method and level, the accuracy (%) over seeds and samples with its hierarchical 95 % interval: which
    skills training kept or lost."""
    out: dict[str, dict[str, dict[str, Any]]] = {method: {} for method in per_seed}
    for level in sorted(set(levels.tolist())):
        subset = {method: [a[levels == level] for a in arrays] for method, arrays in per_seed.items()}
        draws = hierarchical_bootstrap(subset, resamples=resamples)
        for method, arrays in subset.items():
            out[method][str(level)] = {"accuracy": 100 * float(np.mean([a.mean() for a in arrays])),
                                       "ci95": [100 * v for v in interval(draws[method])]}
    return out


def hierarchical_bootstrap(per_seed: dict[str, list[np.ndarray]], *, resamples: int = 4000, seed: int = 0,
                           batch: int = 500) -> dict[str, np.ndarray]:
    """Bootstrap means of each method: seeds drawn with replacement, then problems within each drawn seed, the
    same draws for every method (so differences between methods are paired). Returns the resampled means per
    method. Every seed evaluates the same benchmark, so each array has the same length."""
    rng = np.random.default_rng(seed)
    stacked = {method: np.stack(arrays) for method, arrays in per_seed.items()}  # (seeds, problems)
    seeds, problems = next(iter(stacked.values())).shape
    draws: dict[str, list[np.ndarray]] = {method: [] for method in stacked}
    for start in range(0, resamples, batch):
        size = min(batch, resamples - start)
        chosen = rng.integers(seeds, size=(size, seeds, 1))
        picks = rng.integers(problems, size=(size, seeds, problems))
        for method, values in stacked.items():
            draws[method].append(values[chosen, picks].mean(axis=(1, 2)))
    return {method: np.concatenate(parts) for method, parts in draws.items()}


def interval(values: np.ndarray, level: float = 0.95) -> list[float]:
    """The percentile interval of bootstrap draws."""
    return [float(np.quantile(values, (1 - level) / 2)), float(np.quantile(values, (1 + level) / 2))]


def verdict(ci: list[float], claim: str) -> str:
    """Whether a difference's interval supports the paper's claim. 'above': 'yes' when the interval lies above 0,
    'no' when it lies below, else 'undecided'. 'at least': 'no' only when the interval lies below 0 (equal is
    at least), else 'yes'."""
    low, high = ci
    if claim == "above":
        return "yes" if low > 0 else "no" if high < 0 else "undecided"
    if claim == "at least":
        return "no" if high < 0 else "yes"
    raise ValueError(f"unknown claim {claim!r}: expected 'above' or 'at least'")


def accuracy_summary(per_seed: dict[str, list[np.ndarray]], resamples: int = 4000) -> dict[str, Any]:
    """Per method: mean accuracy (%), per-seed accuracies, the hierarchical 95 % interval; and the paired
    differences (points) of the paper's comparisons with their verdicts."""
    draws = hierarchical_bootstrap(per_seed, resamples=resamples)
    methods = {method: {"accuracy": 100 * float(np.mean([a.mean() for a in arrays])),
                        "per_seed": [100 * float(a.mean()) for a in arrays],
                        "ci95": [100 * v for v in interval(draws[method])]}
               for method, arrays in per_seed.items()}
    comparisons = {}
    for ours, baseline, claim in COMPARISONS:
        if ours in per_seed and baseline in per_seed:
            ci = interval(100 * (draws[ours] - draws[baseline]))
            comparisons[f"{ours}-{baseline}"] = {
                "difference": methods[ours]["accuracy"] - methods[baseline]["accuracy"], "ci95": ci,
                "ours": ours, "baseline": baseline, "claim": claim, "holds": verdict(ci, claim)}
    return {"methods": methods, "comparisons": comparisons}


# --- the policy gap and the weights --------------------------------------------------------------------------


def gap_by_source(rows: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per source (and all rows) of the policy-gap stage's rows.parquet: count, mean kept and expert token
    log-prob under the base model, and their mean difference (how much of the gap the kept response closes;
    0 for expert rows, whose kept response is the expert's)."""
    groups = {source: rows[rows["source"] == source] for source in SOURCES}
    groups["all"] = rows

    def mean(values: pd.Series) -> float | None:
        return float(values.mean()) if len(values) else None

    return {source: {"rows": int(len(group)),
                     "kept_logprob_mean": mean(group["kept_logprob_mean"]),
                     "expert_logprob_mean": mean(group["expert_logprob_mean"]),
                     "logratio": mean(group["kept_logprob_mean"] - group["expert_logprob_mean"])}
            for source, group in groups.items()}


def weight_variance(training_log: str | Path) -> dict[str, float]:
    """Per source, the mean over logging windows of the token-weight variance (training_log.json's
    log_history entries weight_var/<source>, mindthegap.training.weight_stats); a source without rows is left out."""
    history = json.loads(Path(training_log).read_text())["log_history"]
    out = {}
    for source in SOURCES:
        values = [entry[f"weight_var/{source}"] for entry in history if f"weight_var/{source}" in entry]
        if values:
            out[source] = float(np.mean(values))
    return out


def drift(path: str | Path) -> dict[str, float]:
    """How far one checkpoint moved the policy: the mean change of the token log-prob of the kept responses and
    of the expert solutions (the policy_gap_checkpoint stage's *_logprob_mean_delta, checkpoint minus base)."""
    shift = pd.read_parquet(path, columns=["kept_logprob_mean_delta", "expert_logprob_mean_delta"])
    return {"kept": float(shift["kept_logprob_mean_delta"].mean()),
            "expert": float(shift["expert_logprob_mean_delta"].mean())}


# --- the report ----------------------------------------------------------------------------------------------


def aggregate(out: Path, config: dict[str, Any], seeds: list[int], wall: dict[str, float],
              resamples: int = 4000) -> dict[str, Any]:
    """Everything the experiment reports, read from the seeds' results directories (`out`/seed{k}) as the
    workflow writes them. `config` is the experiment's config (before the seeds' overrides)."""
    model = next(iter(config["models"]))
    benchmarks = list(config["benchmarks"])
    methods, trained = planned_methods(config), trained_methods(config)
    runs = {seed: out / f"seed{seed}" for seed in seeds}
    per_seed = {method: [correctness(runs[s], model, run_of(config, method, s), benchmarks) for s in seeds]
                for method in methods}
    levels = benchmark_levels(runs[seeds[0]], config)
    gaps = {f"seed{s}": gap_by_source(pd.read_parquet(gap_rows_file(runs[s], model))) for s in seeds}
    weights = {method: {f"seed{s}": weight_variance(training_log_file(runs[s], model, run_of(config, method, s)))
                        for s in seeds}
               for method in trained}
    shifts = {}
    for method in trained:
        files = {f"seed{s}": shift_file(runs[s], model, run_of(config, method, s)) for s in seeds}
        if all(path.exists() for path in files.values()):  # policy_gap.checkpoints: true
            shifts[method] = {key: drift(path) for key, path in files.items()}
    return {"model": model, "benchmarks": benchmarks, "seeds": [f"seed{s}" for s in seeds],
            "training_seeds": [training_seed(config, s) for s in seeds],
            "problems_per_seed": int(len(per_seed[methods[0]][0])),
            "samples_per_problem": config["evaluation"]["n"],
            "labels": {m: config["methods"][m]["label"] for m in methods},
            "extensions": [m for m in methods if config["methods"][m].get("extension", False)],
            "accuracy": accuracy_summary(per_seed, resamples),
            "accuracy_by_level": None if levels is None else accuracy_by_level(per_seed, levels, resamples),
            "policy_gap": gaps, "weight_var": weights,
            "drift": shifts, "wall_s": dict(wall)}


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def ordering_sentence(summary: dict[str, Any]) -> str:
    """One plain sentence: does the paper's ordering appear, and which part does not."""
    labels, comparisons = summary["labels"], summary["accuracy"]["comparisons"]
    if len(comparisons) < len(COMPARISONS):
        return "The paper's ordering cannot be checked: a compared method is not in this run."
    parts = [f"{labels[c['ours']]} {c['claim']} {labels[c['baseline']]}: {c['holds']}" for c in comparisons.values()]
    appears = all(c["holds"] == "yes" for c in comparisons.values())
    return (f"The paper's ordering {'appears' if appears else 'does not appear'} "
            f"({'; '.join(parts)}; 95 % paired intervals).")


def markdown(summary: dict[str, Any]) -> str:
    """The experiment's tables: accuracy per method and seed, the paper's comparisons, the policy gap and the
    weight variance per source, the drift per method, the wall times."""
    seeds, acc = summary["seeds"], summary["accuracy"]
    labels = {m: label + (" (our extension)" if m in summary["extensions"] else "")
              for m, label in summary["labels"].items()}
    lines = [f"# Miniature experiment: {len(seeds)} seeds × {summary['problems_per_seed']} problems × "
             f"{summary['samples_per_problem']} samples per problem and method", "",
             "Accuracy (%, avg@n); interval: 95 % hierarchical bootstrap (seeds, then problems within each seed). "
             f"Training seeds: {', '.join(map(str, summary['training_seeds']))}.", "",
             "| Method | " + " | ".join(seeds) + " | mean | 95 % interval |",
             "|---|" + "---|" * (len(seeds) + 2)]
    for method, row in acc["methods"].items():
        lines.append(f"| {labels[method]} | " + " | ".join(f"{v:.1f}" for v in row["per_seed"])
                     + f" | {row['accuracy']:.1f} | [{row['ci95'][0]:.1f}, {row['ci95'][1]:.1f}] |")
    lines += ["", "| Paper's claim | difference (points) | 95 % paired interval | holds |", "|---|---|---|---|"]
    for comparison in acc["comparisons"].values():
        claim = f"{labels[comparison['ours']]} {comparison['claim']} {labels[comparison['baseline']]}"
        lines.append(f"| {claim} | {comparison['difference']:+.1f} | "
                     f"[{comparison['ci95'][0]:+.1f}, {comparison['ci95'][1]:+.1f}] | {comparison['holds']} |")
    lines += ["", ordering_sentence(summary)]
    if summary.get("accuracy_by_level"):
        by_level = summary["accuracy_by_level"]
        names = list(next(iter(by_level.values())))
        lines += ["", "Accuracy per level of the task (%, mean over seeds and samples; src/mindthegap/demo.py: the "
                  "base model solves levels 1-2 itself and level 3 only from a hint):", "",
                  "| Method | " + " | ".join(f"{name}: {demo.LEVEL_NAMES[int(name)]}" for name in names) + " |",
                  "|---|" + "---|" * len(names)]
        for method, row in by_level.items():
            lines.append(f"| {labels[method]} | " + " | ".join(f"{row[name]['accuracy']:.1f}" for name in names)
                         + " |")
    gaps = [summary["policy_gap"][s] for s in seeds]
    lines += ["", "Policy gap under the base model: mean token log-prob (nats) of the rewritten dataset's kept "
              "responses and of the expert solutions of the same problems (rows: sum over seeds; means: mean "
              "over seeds):", "", "| Source | rows | kept | expert | kept − expert |", "|---|---|---|---|---|"]
    for source in (*SOURCES, "all"):
        cells = [gap[source] for gap in gaps]
        lines.append(f"| {source} | {sum(c['rows'] for c in cells)} | " + " | ".join(
            fmt(_mean([c[key] for c in cells])) for key in ("kept_logprob_mean", "expert_logprob_mean", "logratio"))
            + " |")
    shrink = _mean([gap["all"]["logratio"] for gap in gaps])
    lines += ["", f"Gap shrink: rewriting raises the mean token log-prob of the training responses under the base "
              f"model by {fmt(shrink)} nats a token over the expert dataset (row 'all'; per-token perplexity "
              f"÷ {fmt(None if shrink is None else float(np.exp(shrink)))})."]
    lines += ["", "Token-weight variance during training (mean over logging windows and seeds; – : no rows of "
              "that source):", "", "| Method | " + " | ".join(SOURCES) + " |", "|---|" + "---|" * len(SOURCES)]
    for method, by_seed in summary["weight_var"].items():
        lines.append(f"| {labels[method]} | " + " | ".join(
            fmt(_mean([by_seed[s].get(source) for s in seeds]), 4) for source in SOURCES) + " |")
    if summary["drift"]:
        lines += ["", "How far training moved the policy: change of the mean token log-prob (nats) of the kept "
                  "responses and of the expert solutions, checkpoint minus base model (mean over seeds):", "",
                  "| Method | kept | expert |", "|---|---|---|"]
        for method, by_seed in summary["drift"].items():
            lines.append(f"| {labels[method]} | " + " | ".join(
                fmt(_mean([by_seed[s][key] for s in by_seed])) for key in ("kept", "expert")) + " |")
    lines += ["", "Wall time: " + ", ".join(f"{key} {value:.0f} s" for key, value in summary["wall_s"].items())]
    return "\n".join(lines) + "\n"


def figure(summary: dict[str, Any], png: Path, svg: Path) -> None:
    """Accuracy per method over all problems and per level of the task, with the hierarchical 95 % intervals."""
    from mindthegap import figures

    labels = {m: label + (" (ours)" if m in summary["extensions"] else "") for m, label in summary["labels"].items()}
    records = [{"method": m, "benchmark": "all problems", "accuracy": row["accuracy"] / 100,
                "ci95": [v / 100 for v in row["ci95"]]} for m, row in summary["accuracy"]["methods"].items()]
    for method, levels in (summary.get("accuracy_by_level") or {}).items():
        records += [{"method": method, "benchmark": f"{level}: {demo.LEVEL_NAMES[int(level)]}", "accuracy": row["accuracy"] / 100,
                     "ci95": [v / 100 for v in row["ci95"]]} for level, row in levels.items()]
    groups = list(dict.fromkeys(r["benchmark"] for r in records))
    title = (f"Miniature: avg@{summary['samples_per_problem']} over {len(summary['seeds'])} seeds x "
             f"{summary['problems_per_seed']} problems (95 % hierarchical bootstrap interval)")
    figures.save(figures.accuracy_figure(records, labels, groups, title=title, average=False), png, svg)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "config/experiment.yaml"),
                        help="the experiment's overlay (default: config/experiment.yaml)")
    parser.add_argument("--base", default=str(REPO / "config/demo.yaml"),
                        help="the config the overlay is merged over (default: config/demo.yaml)")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", default=str(OUT), help="results directory (default results/experiment)")
    parser.add_argument("--only-seed", type=int, help="run this one seed's workflow, no aggregation")
    parser.add_argument("--dry-run", action="store_true", help="write the seed configs and plan each seed (-n)")
    parser.add_argument("--report-only", action="store_true",
                        help="aggregate the finished seeds again (wall times: the last summary.json's)")
    args = parser.parse_args(argv)
    out, config = Path(args.out), experiment_config(args.base, args.config)
    seeds = [args.only_seed] if args.only_seed is not None else list(range(args.seeds))
    if args.report_only:
        previous = out / "summary.json"
        wall = json.loads(previous.read_text())["wall_s"] if previous.exists() else {}
    else:
        write_text(yaml.safe_dump(config, sort_keys=False), out / "config.yaml")
        start, wall = time.monotonic(), {}
        for seed in seeds:
            wall[f"seed{seed}"] = run_seed(config, seed, out, args.cores, args.dry_run)
        if args.only_seed is not None or args.dry_run:
            return 0
        wall["total"] = time.monotonic() - start
    summary = aggregate(out, config, seeds, wall)
    write_json(summary, out / "summary.json")
    write_text(markdown(summary), out / "table.md")
    figure(summary, out / "accuracy.png", out / "accuracy.svg")
    print(markdown(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
