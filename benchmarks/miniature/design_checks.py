"""The measurements behind the demo's two design choices (benchmarks/miniature/README.md).

  base  the pre-training mix: build the base model under each mix (config/demo.yaml's demo_model settings) and
        measure, per level, its accuracy on the benchmark and with the hint on training problems;
  lr    the fine-tuning learning rate: fine-tune a finished demo run's base model on its own correct samples
        (round 1's self rows) at each rate (the demo's training settings otherwise) and measure its accuracy.

Accuracy: the demo's benchmark, every problem `--samples` times at the evaluation's temperature, judged by the
project's grader; per level and over all (avg@n, %).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from mindthegap import demo, prompts, training
from mindthegap.generation import SamplingParams, load_backend
from mindthegap.grading import judge

ROOT = Path(__file__).resolve().parents[2]


def accuracy_by_level(model: str, rows: list[dict], render, config: dict, samples: int) -> dict[str, float]:
    """avg@samples per level and over all (%), sampled with the evaluation's settings."""
    evaluation = config["evaluation"]
    backend = load_backend("transformers", model, batch_size=evaluation["batch_size"],
                           stop_tokens=config["models"]["tiny"]["stop_tokens"])
    params = SamplingParams(n=samples, temperature=evaluation["temperature"], top_p=evaluation["top_p"],
                            max_new_tokens=evaluation["max_new_tokens"], seed=evaluation["seed"])
    outputs = backend.sample([render(row, backend.tokenizer) for row in rows], params)
    correct = pd.DataFrame([{"level": row["level"], "correct": judge(row["answer"], c.text).correct}
                            for row, completions in zip(rows, outputs) for c in completions])
    by_level = (100 * correct.groupby("level")["correct"].mean()).round(1)
    return {**{f"level {level}": value for level, value in by_level.items()},
            "all": round(100 * correct["correct"].mean(), 2)}


def plain(row: dict, tokenizer) -> str:
    return prompts.render("chat", row["problem"], tokenizer)


def hinted(row: dict, tokenizer) -> str:
    return prompts.render_guided(row["problem"], row["solution"], tokenizer)


def benchmark_rows(config: dict) -> list[dict]:
    spec = next(iter(config["benchmarks"].values()))
    return demo.generate_problems(spec["task"], spec["n"], spec["seed"], spec["split"])


def check_base(config: dict, mixes: list[tuple[float, float]], samples: int) -> list[dict]:
    settings, problems = config["demo_model"], config["problems"]
    train = demo.generate_problems(problems["task"], problems["n"], problems["seed"], problems["split"])
    results = []
    for mix in mixes:
        with tempfile.TemporaryDirectory() as directory:
            start = time.monotonic()
            demo.build_model(directory, seed=settings["seed"], steps=settings["steps"],
                             batch_size=settings["batch_size"], lr=settings["learning_rate"],
                             hidden_size=settings["hidden_size"], layers=settings["layers"],
                             corpus_size=settings["corpus_size"], guided_template=prompts.DEFAULT_GUIDED_TEMPLATE,
                             mix=mix)
            built = time.monotonic() - start
            results.append({"mix": list(mix), "pretraining_s": round(built, 1),
                            "benchmark": accuracy_by_level(directory, benchmark_rows(config), plain, config, samples),
                            "training problems, hint shown": accuracy_by_level(directory, train, hinted, config,
                                                                               samples)})
        print(json.dumps(results[-1]), flush=True)
    return results


def check_lr(config: dict, run: Path, rates: list[float], samples: int) -> list[dict]:
    base = str(run / "models/tiny")
    rewritten = pd.read_parquet(run / "datasets/tiny/round1/rewritten.parquet")
    results = [{"learning_rate": None, "benchmark": accuracy_by_level(base, benchmark_rows(config), plain, config,
                                                                      samples)}]
    print(json.dumps(results[-1]), flush=True)
    with tempfile.TemporaryDirectory() as directory:
        own = Path(directory) / "self.parquet"
        rewritten[rewritten["source"] == "self"].to_parquet(own)
        for rate in rates:
            hparams = {**config["training"], "loss": "sft", "learning_rate": rate,
                       "seed": config["training"]["seeds"][0], "disable_tqdm": True}
            out = Path(directory) / f"lr{rate}"
            training.train(str(own), base, str(out / "model"), str(out / "work"), hparams)
            results.append({"learning_rate": rate, "rows": int(len(rewritten[rewritten["source"] == "self"])),
                            "benchmark": accuracy_by_level(str(out / "model"), benchmark_rows(config), plain, config,
                                                           samples)})
            print(json.dumps(results[-1]), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("check", choices=["base", "lr"])
    parser.add_argument("--config", default=str(ROOT / "config/demo.yaml"))
    parser.add_argument("--run", default=str(ROOT / "results/demo"), help="a finished demo run (lr)")
    parser.add_argument("--mixes", default="0.35,0.6;0.45,0.8", help="level-1 share, level-1+2 share; ...")
    parser.add_argument("--rates", default="1e-4,3e-4,1e-3")
    parser.add_argument("--samples", type=int, default=4)
    args = parser.parse_args()
    config = yaml.safe_load(Path(args.config).read_text())
    if args.check == "base":
        mixes = [tuple(float(x) for x in mix.split(",")) for mix in args.mixes.split(";")]
        check_base(config, mixes, args.samples)
    else:
        check_lr(config, Path(args.run), [float(x) for x in args.rates.split(",")], args.samples)


if __name__ == "__main__":
    main()
