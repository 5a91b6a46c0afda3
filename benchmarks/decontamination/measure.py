"""Decontamination at the paper's scale: 50k NuminaMath-shaped training problems against the five real benchmarks.

The sample (rows with NuminaMath-CoT's fields: source, problem, solution, messages) holds
- the 1,319 GSM8K test problems (`<benchmarks>/gsm8k/test.jsonl`: real math prose that is in none of the five
  benchmarks; NuminaMath-CoT itself has a `gsm8k` source): what they match is what the checks find in unrelated
  problems;
- `--planted` benchmark problems re-typeset (case, `\\( \\)` for `$`, `\\dfrac` for `\\frac`, doubled spaces, no
  final period): the exact check must find each;
- `--planted` runs of 12 words of benchmark problems inside synthetic problems: the 8-gram check must find each;
- synthetic word problems up to `--rows` (random numbers and words: they match nothing by construction).

Prints and writes (`--out`) the counts per benchmark, the planted recall and the time of the check.
Run: `python benchmarks/decontamination/measure.py --benchmarks ../shared/data/benchmarks`.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from pathlib import Path

import pandas as pd

from mindthegap.data import load_benchmark
from mindthegap.decontamination import contamination_report, summary_markdown

BENCHMARKS = ("math500", "minerva_math", "olympiadbench", "aime24", "amc23")
WORDS = ("triangle circle integer sum product square root angle side length area perimeter number digits prime "
         "sequence term ratio probability coin dice marble box apples train speed hours minutes price cost "
         "percent profit function value graph point line slope intercept vertex polynomial coefficient").split()


def retypeset(problem: str) -> str:
    """The same problem typeset otherwise: what a copy in another dataset often looks like."""
    text = re.sub(r"\$([^$]*)\$", r"\\(\1\\)", problem).replace("\\frac", "\\dfrac").replace(" ", "  ")
    return text.upper().rstrip(". ") if len(text) % 2 else text.lower().rstrip(". ")


def synthetic_problem(rng: random.Random) -> str:
    words = [rng.choice(WORDS) if rng.random() < 0.7 else str(rng.randint(1, 999)) for _ in range(rng.randint(15, 80))]
    return "Let " + " ".join(words) + f". Find ${rng.randint(2, 99)}x + {rng.randint(1, 99)}$."


def numina_row(problem: str, source: str) -> dict:
    solution = "We compute step by step. The answer is $\\boxed{0}$."
    return {"source": source, "problem": problem, "solution": solution,
            "messages": [{"role": "user", "content": problem}, {"role": "assistant", "content": solution}]}


def build_sample(root: Path, benchmarks: dict[str, pd.DataFrame], rows: int, planted: int, seed: int):
    rng = random.Random(seed)
    sample = [numina_row(json.loads(line)["question"], "gsm8k")
              for line in (root / "gsm8k" / "test.jsonl").read_text().splitlines() if line.strip()]
    pool = [(name, bench_id, problem) for name, frame in benchmarks.items()
            for bench_id, problem in zip(frame["id"], frame["problem"])]
    exact = rng.sample(pool, planted)
    long_ones = [item for item in pool if len(item[2].split()) >= 20]
    inside = rng.sample(long_ones, planted)
    for name, bench_id, problem in exact:
        sample.append(numina_row(retypeset(problem), "planted_exact"))
    for name, bench_id, problem in inside:
        words = problem.split()
        start = rng.randrange(len(words) - 12)
        sample.append(numina_row(synthetic_problem(rng) + " " + " ".join(words[start:start + 12]) + " "
                                 + synthetic_problem(rng), "planted_inside"))
    while len(sample) < rows:
        sample.append(numina_row(synthetic_problem(rng), "synthetic_math"))
    rng.shuffle(sample)
    frame = pd.DataFrame(sample)
    frame.insert(0, "id", [f"numina-{i:06d}" for i in range(len(frame))])
    return frame, {"exact": exact, "inside": inside}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--benchmarks", type=Path, default=Path(__file__).resolve().parents[3] / "shared/data/benchmarks")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--planted", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    benchmarks = {name: load_benchmark({"source": "local", "path": str(args.benchmarks / name / "test.jsonl")}, name)
                  for name in BENCHMARKS}
    sample, planted = build_sample(args.benchmarks, benchmarks, args.rows, args.planted, args.seed)
    started = time.perf_counter()
    report = contamination_report(sample, benchmarks, dataset="numina_shaped")
    seconds = time.perf_counter() - started
    found = set(report["contaminated_ids"])
    by_source = sample[sample["id"].isin(found)]["source"].value_counts().to_dict()
    pairs = {(p["training_id"], p["benchmark_id"], p["check"]) for entry in report["benchmarks"].values()
             for p in entry["pairs"]}
    matches = {(p["training_id"], p["benchmark_id"], p["check"]): p for entry in report["benchmarks"].values()
               for p in entry["pairs"]}
    source_of = dict(zip(sample["id"], sample["source"]))
    recall = {
        "exact": sum(any(c == "exact" and source_of[t] == "planted_exact" and b == bench_id for t, b, c in pairs)
                     for _, bench_id, _ in planted["exact"]) / len(planted["exact"]),
        "inside": sum(any(c == "ngram" and source_of[t] == "planted_inside" and b == bench_id for t, b, c in pairs)
                      for _, bench_id, _ in planted["inside"]) / len(planted["inside"]),
    }
    summary = {"training_problems": len(sample), "benchmark_problems": sum(map(len, benchmarks.values())),
               "seconds": round(seconds, 2), "contaminated_by_source": by_source, "planted_recall": recall,
               "per_benchmark": {name: entry["contaminated_training_problems"]
                                 for name, entry in report["benchmarks"].items()},
               "gsm8k_pairs": sorted({(t, b, c) for t, b, c in pairs if source_of[t] == "gsm8k"})}
    print(summary_markdown(report))
    print(json.dumps({k: v for k, v in summary.items() if k != "gsm8k_pairs"}, indent=1))
    for t, b, c in summary["gsm8k_pairs"][:10]:
        match = matches[(t, b, c)]
        print(f"gsm8k match {t} ~ {b} ({c}): {match.get('ngram', '')!r}")
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
