"""`make gpu-check` (`python -m mindthegap.gpu_check`): the package's GPU path, end to end, in a few minutes.

With a random Qwen2 that carries Qwen2.5-Math-7B's real tokenizer and chat template (`mindthegap.real_tokenizers`),
on arithmetic problems with known answers:

1. sampling: `mindthegap.sampling.sample_to_parquet` with the transformers backend in bf16 (the behaviour
   log-probs of every sampled token are recorded, as for the rewriting stage);
2. teacher-forced scoring: the backend's `score` (batched forward passes over prompt + sampled completion); the
   log-prob of each sampled token must agree with the one recorded while sampling, within `TOLERANCE` (the two
   computations differ only by the KV cache and the padding side, so the gap is bf16 rounding, not a
   misalignment, which would be off by whole nats);
3. training: `mindthegap.training.train` for `--steps` steps of each loss (sft, dft, is), bf16 autocast over fp32
   master weights, on the samples (self rows, with their behaviour log-probs) and the expert solutions;
4. evaluation: the samples graded by `mindthegap.verify.judge_samples`, avg@n and the harness's mean_acc.

It prints tokens/s of sampling and scoring and the step time of each loss, then `gpu-check: OK` or raises.
`--device cpu --size tiny` runs the same path on a CPU (the test suite does, with a few steps).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Model and workload per size. "gpu": a few minutes on one GPU, model load included; "tiny": the CPU test's.
SIZES: dict[str, dict[str, int]] = {
    "gpu": {"hidden": 512, "layers": 4, "heads": 8, "kv_heads": 2, "intermediate": 1408, "problems": 64, "n": 4,
            "max_new_tokens": 256, "batch_size": 64, "per_device_batch_size": 8, "max_length": 512},
    "tiny": {"hidden": 32, "layers": 2, "heads": 4, "kv_heads": 2, "intermediate": 64, "problems": 4, "n": 2,
             "max_new_tokens": 12, "batch_size": 8, "per_device_batch_size": 2, "max_length": 128},
}
# Largest |recorded - teacher-forced| log-prob of a sampled token (nats). bf16 keeps 8 bits of mantissa: logits of
# size ~10 carry errors of ~0.04, and cached vs full-sequence attention sums in another order.
TOLERANCE = {"max_abs": 0.15, "mean_abs": 0.02}
LOSSES = ("sft", "dft", "is", "power", "asft", "proximal")  # every objective of mindthegap.objectives: step_s is
# each one's cost against DFT on the GPU, with a real vocabulary (asft's full-vocabulary KL)
STOP_TOKENS = ["<|im_end|>", "<|endoftext|>"]


# --- inputs -----------------------------------------------------------------------------------------------------


def build_model(directory: Path, size: dict[str, int], seed: int = 0) -> Path:
    """A random Qwen2 of `size` with Qwen2.5-Math-7B's tokenizer, saved (fp32) into `directory`."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from mindthegap.real_tokenizers import QWEN25_VOCAB_ROWS, qwen25_math_tokenizer

    tokenizer = qwen25_math_tokenizer()
    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=QWEN25_VOCAB_ROWS, hidden_size=size["hidden"],
                         intermediate_size=size["intermediate"], num_hidden_layers=size["layers"],
                         num_attention_heads=size["heads"], num_key_value_heads=size["kv_heads"],
                         max_position_embeddings=4096, tie_word_embeddings=False,
                         bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    Qwen2ForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def arithmetic_problems(count: int, seed: int = 0):
    """Problems in the pipeline's contract (id, problem, solution, answer) with known answers."""
    import random

    import pandas as pd

    rng = random.Random(seed)
    rows = []
    for index in range(count):
        a, b, c = rng.randint(2, 99), rng.randint(2, 99), rng.randint(2, 9)
        answer = a + b * c
        rows.append({"id": f"check-{index:04d}", "problem": f"Compute ${a} + {b} \\times {c}$.",
                     "solution": f"First ${b} \\times {c} = {b * c}$, then ${a} + {b * c} = {answer}$.\n"
                                 f"The answer is $\\boxed{{{answer}}}$.",
                     "answer": str(answer)})
    return pd.DataFrame(rows)


# --- the four stages --------------------------------------------------------------------------------------------


def sample(model_dir: Path, problems, size: dict[str, int], device: str, output: Path) -> dict[str, Any]:
    from mindthegap.generation import SamplingParams
    from mindthegap.generation.hf import TransformersBackend
    from mindthegap.io import read_parquet
    from mindthegap.prompts import render
    from mindthegap.sampling import sample_to_parquet

    loaded: dict[str, Any] = {}

    def backend():
        start = time.perf_counter()
        loaded["backend"] = TransformersBackend(str(model_dir), batch_size=size["batch_size"], dtype="bfloat16",
                                                device=device, stop_tokens=STOP_TOKENS, max_model_len=4096)
        loaded["load_s"] = time.perf_counter() - start
        return loaded["backend"]

    tokenizer = _tokenizer(model_dir)
    params = SamplingParams(n=size["n"], temperature=1.0, top_p=1.0, max_new_tokens=size["max_new_tokens"], seed=0)
    start = time.perf_counter()
    summary = sample_to_parquet(problems, lambda row: render("chat", row["problem"], tokenizer), backend, params,
                                output, chunk_size=len(problems))
    seconds = time.perf_counter() - start - loaded["load_s"]
    samples = read_parquet(output)
    tokens = int(samples["num_tokens"].sum())
    return {"samples": samples, "backend": loaded["backend"], "summary": summary, "tokens": tokens,
            "seconds": seconds, "tokens_per_s": tokens / seconds, "load_s": loaded["load_s"]}


def score(sampled: dict[str, Any]) -> dict[str, Any]:
    """Teacher-forced scoring of every sample by the sampling backend itself (`Backend.score`)."""
    samples = sampled["samples"]
    backend = sampled["backend"]
    completion_ids = [list(map(int, ids)) for ids in samples["token_ids"]]
    start = time.perf_counter()
    scored = backend.score(samples["prompt"].tolist(), completion_ids)
    seconds = time.perf_counter() - start
    gaps = [abs(a - float(b)) for ours, recorded in zip(scored, samples["logprobs"]) for a, b in zip(ours, recorded)]
    if not gaps:
        raise RuntimeError("nothing was sampled: no log-probs to compare")
    agreement = {"max_abs": max(gaps), "mean_abs": sum(gaps) / len(gaps), "tokens": len(gaps)}
    if agreement["max_abs"] > TOLERANCE["max_abs"] or agreement["mean_abs"] > TOLERANCE["mean_abs"]:
        raise AssertionError(f"teacher-forced log-probs disagree with the recorded ones: {agreement}, "
                             f"tolerance {TOLERANCE}")
    tokens = sum(backend.prompt_lengths(samples["prompt"].tolist())) + sum(map(len, completion_ids))
    return {**agreement, "seconds": seconds, "tokens_per_s": tokens / seconds}


def training_rows(samples, problems, tokenizer) -> list[dict[str, Any]]:
    """Per problem: its first sample as a self row (token ids + behaviour log-probs) and its expert solution."""
    from mindthegap.prompts import render

    rows = []
    for first in samples.drop_duplicates("problem_id").to_dict("records"):
        rows.append({"id": f"{first['problem_id']}-self", "prompt": first["prompt"],
                     "completion": first["completion"], "completion_token_ids": list(map(int, first["token_ids"])),
                     "behaviour_logprobs": list(map(float, first["logprobs"])), "source": "self"})
    for problem in problems.to_dict("records"):
        rows.append({"id": f"{problem['id']}-expert", "prompt": render("chat", problem["problem"], tokenizer),
                     "completion": problem["solution"], "completion_token_ids": None, "behaviour_logprobs": None,
                     "source": "expert"})
    return rows


def train_each_loss(model_dir: Path, rows: list[dict[str, Any]], size: dict[str, int], steps: int,
                    workdir: Path) -> dict[str, dict[str, Any]]:
    import pandas as pd

    from mindthegap.io import write_parquet
    from mindthegap.training import train

    dataset = workdir / "train.parquet"
    write_parquet(pd.DataFrame(rows), dataset)
    batch = size["per_device_batch_size"]
    hparams = {"learning_rate": 1e-4, "global_batch_size": batch, "per_device_batch_size": batch,
               "max_length": size["max_length"], "epochs": 1, "max_steps": steps, "lr_scheduler": "cosine",
               "warmup_ratio": 0.1, "weight_decay": 0.01, "adam_beta1": 0.9, "adam_beta2": 0.95,
               "max_grad_norm": 1.0, "bf16": True, "save_steps": 10 * steps, "seed": 0, "is_clip": 2.0,
               "is_expert_weight": "dft", "logging_steps": max(1, steps // 4), "disable_tqdm": True}
    results = {}
    for loss in LOSSES:
        summary = train(str(dataset), str(model_dir), str(workdir / f"out-{loss}"), str(workdir / f"work-{loss}"),
                        {**hparams, "loss": loss})
        history = json.loads((workdir / f"out-{loss}" / "training_log.json").read_text())["log_history"]
        runtime = next(entry["train_runtime"] for entry in history if "train_runtime" in entry)
        losses = [entry["loss"] for entry in history if "loss" in entry]
        if summary["global_steps"] != steps or not all(map(math.isfinite, losses)):
            raise AssertionError(f"{loss}: {summary['global_steps']} steps of {steps}, losses {losses}")
        if summary["mixed_precision"] != "bf16" or summary["master_weights"] != ["torch.float32"]:
            raise AssertionError(f"{loss}: expected bf16 autocast over fp32 master weights, got {summary}")
        results[loss] = {"step_s": runtime / steps, "first_loss": losses[0], "last_loss": losses[-1]}
    return results


def evaluate(samples, problems) -> dict[str, Any]:
    from mindthegap.metrics import avg_at_n, harness_mean_acc
    from mindthegap.verify import judge_samples, status_counts

    judged = judge_samples(samples, problems[["id", "answer"]], workers=1, timeout=3.0)
    correct = [group["correct"].tolist() for _, group in judged.groupby("problem_id", sort=False)]
    # the grader itself: each expert solution, graded as a sample, must be correct
    experts = judge_samples(problems.rename(columns={"id": "problem_id", "solution": "completion"})
                            .assign(finish_reason="stop"), problems[["id", "answer"]], workers=1, timeout=3.0)
    if not experts["correct"].all():
        wrong = experts.loc[~experts["correct"], "problem_id"].tolist()
        raise AssertionError(f"expert solutions graded wrong: {wrong}")
    return {"avg@n": avg_at_n(correct), "mean_acc": harness_mean_acc(correct)[0], "statuses": status_counts(judged)}


# --- the command --------------------------------------------------------------------------------------------


def run(device: str, size_name: str, steps: int, workdir: Path) -> dict[str, Any]:
    import torch

    size = SIZES[size_name]
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda, but torch sees no GPU (CUDA_VISIBLE_DEVICES, driver?); --device cpu runs "
                           "the same path on the CPU")
    report: dict[str, Any] = {"device": _device_name(device), "size": size_name, "torch": torch.__version__}
    start = time.perf_counter()
    model_dir = build_model(workdir / "model", size)
    problems = arithmetic_problems(size["problems"])
    sampled = sample(model_dir, problems, size, device, workdir / "samples.parquet")
    report["sampling"] = {k: sampled[k] for k in ("tokens", "seconds", "tokens_per_s", "load_s", "summary")}
    _print("sampling (bf16, transformers)", report["sampling"])
    report["scoring"] = score(sampled)
    _print("teacher-forced scoring", report["scoring"], f"tolerance {TOLERANCE}")
    del sampled["backend"]
    if device == "cuda":
        torch.cuda.empty_cache()
    rows = training_rows(sampled["samples"], problems, _tokenizer(model_dir))
    report["training"] = train_each_loss(model_dir, rows, size, steps, workdir)
    for loss, result in report["training"].items():
        _print(f"training {loss} ({steps} steps, bf16 autocast, fp32 master weights)", result)
    report["evaluation"] = evaluate(sampled["samples"], problems)
    _print("evaluation (graded samples)", report["evaluation"])
    report["wall_s"] = time.perf_counter() - start
    print(f"gpu-check: OK on {report['device']} in {report['wall_s']:.1f} s", flush=True)
    return report


def _device_name(device: str) -> str:
    import torch

    return torch.cuda.get_device_name(0) if device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"


def _tokenizer(model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def _print(stage: str, values: dict[str, Any], note: str = "") -> None:
    shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
    print(f"{stage}: {shown}" + (f" ({note})" if note else ""), flush=True)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m mindthegap.gpu_check", description=__doc__,
                                               formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--size", choices=sorted(SIZES), default=None, help="default: gpu on cuda, tiny on cpu")
    parser.add_argument("--steps", type=int, default=20, help="training steps of each loss")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary directory, removed after")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    return parser


def main(args: argparse.Namespace | None = None) -> int:
    args = args or build_parser().parse_args()
    if args.device == "cpu":  # training, too, stays on the CPU (it takes the GPU whenever torch sees one)
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    size = args.size or ("gpu" if args.device == "cuda" else "tiny")
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        report = run(args.device, size, args.steps, args.workdir or Path(scratch))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
