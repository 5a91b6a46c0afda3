"""A rehearsal of the paper's own config on a machine without GPUs, network or hub access.

The rehearsal config is derived from `config/config.yaml` by changing only what cannot exist here:

* each hub model becomes a local directory laid out like its hub repository: tiny random weights of the same
  architecture, but the model's real tokenizer, chat template and generation config (`mindthegap.real_tokenizers`);
* NuminaMath-CoT becomes a small local dataset laid out like the hub's (its fields, parquet shards under `data/`),
  read through the same `datasets.load_dataset` call: only the path differs;
* the benchmarks are the five real files of `../shared/data/benchmarks`, a few problems each;
* sizes shrink (problems, samples, shards, token limits, steps), both sampling stages use the transformers
  backend instead of vLLM, and training runs as one process (no GPUs here).

Everything else (templates, stop tokens, methods, the grader, the training recipe) is the paper config's.
`python -m mindthegap.rehearsal` (or `make rehearsal`) builds the inputs, writes the derived config and runs the
workflow through the local profile; outputs go to `results/rehearsal/`.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from mindthegap.io import apply_umask

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
RESULTS_DIR = "results/rehearsal"
# NuminaMath-CoT's columns on the hub (AI-MO/NuminaMath-CoT, data/train-*.parquet).
NUMINA_FIELDS = ("source", "problem", "solution", "messages")
BENCHMARKS = ("math500", "minerva_math", "olympiadbench", "aime24", "amc23")

# Small sizes: everything the paper's grid runs, in minutes on 2 cores.
SIZES: dict[str, Any] = {
    "problems_limit": 8,
    "benchmark_limit": 2,
    "sampling": {"shards": 2, "batch_size": 8, "n": 2, "max_new_tokens": 24},
    "evaluation": {"shards": 2, "batch_size": 8, "n": 2, "max_new_tokens": 24},
    "training": {"max_steps": 2, "global_batch_size": 4, "per_device_batch_size": 2, "max_length": 512,
                 "save_steps": 1, "logging_steps": 1},
    "grader_workers": 1,
}
# One thread per job, so that two jobs share the two cores (the paper's settings give each GPU job 2 and training 32;
# tiny models gain nothing from more): `--set-threads`, which overrides a rule's threads without touching the config.
THREADS = {"sample": 1, "evaluate_sample": 1, "train": 1, "policy_gap": 1, "policy_gap_checkpoint": 1}


# --- the paper's models, tiny ------------------------------------------------------------------------------


def _qwen25_math_7b() -> tuple[Any, dict[str, Any]]:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from mindthegap.real_tokenizers import QWEN25_VOCAB_ROWS

    # Qwen2.5-Math-7B's config.json with the sizes shrunk (hidden 3584, 28 layers, 28 heads, 4 KV heads).
    config = Qwen2Config(vocab_size=QWEN25_VOCAB_ROWS, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         rope_theta=10_000.0, tie_word_embeddings=False, bos_token_id=151643, eos_token_id=151643)
    generation = {"bos_token_id": 151643, "eos_token_id": 151643, "do_sample": False, "max_new_tokens": 2048}
    return Qwen2ForCausalLM(config), generation


def _llama31_8b_instruct() -> tuple[Any, dict[str, Any]]:
    from transformers import LlamaConfig, LlamaForCausalLM

    from mindthegap.real_tokenizers import LLAMA31_VOCAB_ROWS

    # Llama-3.1-8B-Instruct's config.json with the sizes shrunk (hidden 4096, 32 layers, 32 heads, 8 KV heads).
    config = LlamaConfig(vocab_size=LLAMA31_VOCAB_ROWS, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=131_072,
                         rope_theta=500_000.0, tie_word_embeddings=False, bos_token_id=128000,
                         eos_token_id=[128001, 128008, 128009])
    # The published generation_config.json: its sampling defaults must not leak into ours (the backends override).
    generation = {"bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "do_sample": True,
                  "temperature": 0.6, "top_p": 0.9}
    return LlamaForCausalLM(config), generation


def _model_builders():
    from mindthegap.real_tokenizers import llama31_instruct_tokenizer, qwen25_math_tokenizer

    return {
        "Qwen/Qwen2.5-Math-7B": (qwen25_math_tokenizer, _qwen25_math_7b),
        "meta-llama/Llama-3.1-8B-Instruct": (llama31_instruct_tokenizer, _llama31_8b_instruct),
    }


def build_tiny_model(hub_id: str, output_dir: Path, seed: int = 0) -> Path:
    """A local directory laid out like `hub_id`'s repository: tiny random weights, the real tokenizer."""
    import torch
    from transformers import GenerationConfig

    builders = _model_builders()
    if hub_id not in builders:
        raise ValueError(f"no rehearsal model for {hub_id!r}; known: {', '.join(builders)}")
    if (output_dir / "config.json").exists():
        return output_dir
    make_tokenizer, make_model = builders[hub_id]
    torch.manual_seed(seed)
    tokenizer = make_tokenizer()
    model, generation = make_model()
    model.generation_config = GenerationConfig(**generation)
    tmp = output_dir.with_name(output_dir.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    apply_umask(tmp)  # safetensors writes the weights 0600
    tmp.rename(output_dir)
    return output_dir


# --- NuminaMath-CoT, laid out like the hub's ------------------------------------------------------------


def _arithmetic_row(rng: random.Random) -> tuple[str, str]:
    a, b, c = rng.randint(2, 40), rng.randint(2, 40), rng.randint(2, 9)
    problem = f"Compute ${a} + {b} \\times {c}$."
    solution = (f"Multiplication comes first: ${b} \\times {c} = {b * c}$. Then ${a} + {b * c} = {a + b * c}$.\n"
                f"The answer is $\\boxed{{{a + b * c}}}$.")
    return problem, solution


def _equation_row(rng: random.Random) -> tuple[str, str]:
    x, a, b = rng.randint(-9, 9), rng.randint(2, 9), rng.randint(1, 30)
    problem = f"Solve for $x$: ${a}x + {b} = {a * x + b}$."
    solution = (f"Subtract {b} from both sides: ${a}x = {a * x}$. Divide by {a}: $x = {x}$.\n"
                f"Therefore, $x = \\boxed{{{x}}}$.")
    return problem, solution


def _fraction_row(rng: random.Random) -> tuple[str, str]:
    from fractions import Fraction

    p, q = Fraction(rng.randint(1, 9), rng.randint(2, 9)), Fraction(rng.randint(1, 9), rng.randint(2, 9))
    total = p + q
    answer = f"\\frac{{{total.numerator}}}{{{total.denominator}}}" if total.denominator != 1 else str(total)
    problem = f"What is $\\frac{{{p.numerator}}}{{{p.denominator}}} + \\frac{{{q.numerator}}}{{{q.denominator}}}$?"
    solution = f"Over a common denominator the sum is ${answer}$.\n\nThus the answer is $\\boxed{{{answer}}}$."
    return problem, solution


def _long_row(rng: random.Random, words: int = 9000) -> tuple[str, str]:
    """A demonstration longer than any context of the paper's models: its guided prompt cannot fit."""
    steps = " ".join(f"Step {i}: the partial sum is {i * (i + 1) // 2}." for i in range(1, words // 6))
    n = words // 6 - 1
    return f"Find $1 + 2 + \\dots + {n}$.", f"{steps}\nSo the sum is $\\boxed{{{n * (n + 1) // 2}}}$."


def numina_like_rows(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """Rows with NuminaMath-CoT's fields (source, problem, solution, messages); one has an over-long solution."""
    rng = random.Random(seed)
    kinds = [_arithmetic_row, _equation_row, _fraction_row]
    rows = []
    for index in range(count):
        problem, solution = _long_row(rng) if index == 3 else kinds[index % len(kinds)](rng)
        rows.append({"source": "synthetic_math", "problem": problem, "solution": solution,
                     "messages": [{"role": "user", "content": problem}, {"role": "assistant", "content": solution}]})
    return rows


def write_hub_dataset(root: Path, rows: list[dict[str, Any]], shards: int = 2) -> Path:
    """`root/data/train-0000i-of-0000n.parquet`: the file layout of a hub dataset's parquet export."""
    import pandas as pd

    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    for index in range(shards):
        part = rows[index * len(rows) // shards:(index + 1) * len(rows) // shards]
        pd.DataFrame(part, columns=list(NUMINA_FIELDS)).to_parquet(
            data / f"train-{index:05d}-of-{shards:05d}.parquet", index=False)
    (root / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
                                    "    path: data/train-*\n---\nA stand-in for AI-MO/NuminaMath-CoT (rehearsal).\n")
    return root


# --- the derived config -----------------------------------------------------------------------------------


def derive_config(paper: dict[str, Any], inputs: Path, benchmark_root: Path,
                  results_dir: str = RESULTS_DIR) -> dict[str, Any]:
    """The paper's config with what cannot exist here replaced (see the module doc); everything else kept."""
    config = copy.deepcopy(paper)
    config["results_dir"] = results_dir
    for model in config["models"].values():
        model["path"] = str(inputs / "hub" / model["path"])  # revision, templates, stop tokens: the paper's
    problems = config["problems"]
    if problems.get("source") != "hf":
        raise ValueError(f"the paper's problems come from the hub; got source {problems.get('source')!r}")
    problems["path"] = str(inputs / "hub" / problems["path"])
    problems["limit"] = SIZES["problems_limit"]
    config["benchmark_root"] = str(benchmark_root)
    for name, spec in config["benchmarks"].items():
        spec["limit"] = SIZES["benchmark_limit"]
    for section in ("sampling", "evaluation"):
        config[section]["backend"] = "transformers"
        config[section]["shards"] = SIZES[section]["shards"]
        config[section]["batch_size"] = SIZES[section]["batch_size"]
    for phase in ("self", "guided"):
        config["sampling"][phase].update(n=SIZES["sampling"]["n"], max_new_tokens=SIZES["sampling"]["max_new_tokens"])
    config["evaluation"].update(n=SIZES["evaluation"]["n"], max_new_tokens=SIZES["evaluation"]["max_new_tokens"])
    config["training"].update(SIZES["training"])
    config["grader"]["workers"] = SIZES["grader_workers"]
    config["resources"].update(training_gpus=1, training_nodes=1)  # this machine: one process, no GPU
    return config


def prepare(workdir: Path, benchmark_root: Path, paper_config: Path = REPO / "config" / "config.yaml") -> Path:
    """Build the rehearsal's inputs under `workdir/results/rehearsal/inputs` and write its config; returns it."""
    paper = yaml.safe_load(paper_config.read_text())
    results = workdir / RESULTS_DIR
    inputs = (results / "inputs").resolve()
    for model in paper["models"].values():
        build_tiny_model(model["path"], inputs / "hub" / model["path"])
    dataset = inputs / "hub" / paper["problems"]["path"]
    if not (dataset / "data").is_dir():
        write_hub_dataset(dataset, numina_like_rows(2 * SIZES["problems_limit"]))
    config = derive_config(paper, inputs, benchmark_root.resolve())
    path = results / "config.yaml"
    path.write_text("# Derived from config/config.yaml by mindthegap.rehearsal: do not edit.\n"
                    + yaml.safe_dump(config, sort_keys=False))
    return path


def run(workdir: Path, benchmark_root: Path, cores: int = 2, extra: list[str] | None = None) -> dict[str, Any]:
    """Prepare and run the rehearsal through the local profile; returns the wall times."""
    started = time.monotonic()
    config = prepare(workdir, benchmark_root)
    prepared = time.monotonic()
    command = [str(Path(sys.executable).with_name("snakemake")), "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(workdir), "--configfile", str(config), "--profile", str(REPO / "profiles/local"),
               "--set-threads", *(f"{rule}={n}" for rule, n in THREADS.items()), "--cores", str(cores),
               *(extra or [])]
    log.info("running: %s", " ".join(command))
    subprocess.run(command, check=True)
    times = {"prepare_s": round(prepared - started, 1), "workflow_s": round(time.monotonic() - prepared, 1)}
    (workdir / RESULTS_DIR / "rehearsal_time.json").write_text(json.dumps(times) + "\n")
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path.cwd(), help="where results/rehearsal goes")
    parser.add_argument("--benchmarks", type=Path, default=REPO.parent / "shared" / "data" / "benchmarks",
                        help="the real benchmark files (<name>/test.jsonl)")
    parser.add_argument("--cores", type=int, default=2)
    args, extra = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    missing = [name for name in BENCHMARKS if not (args.benchmarks / name / "test.jsonl").exists()]
    if missing:
        parser.error(f"{args.benchmarks}: no test.jsonl for {', '.join(missing)} (pass --benchmarks DIR)")
    times = run(args.workdir.resolve(), args.benchmarks, args.cores, extra)
    log.info("rehearsal done: %s", times)
    return 0


if __name__ == "__main__":
    sys.exit(main())
