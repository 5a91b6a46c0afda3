"""The GPU check (mindthegap.gpu_check): its scoring agrees with the sampler's recorded log-probs, and the whole
check runs on the CPU at a tiny size (no GPU here; `make gpu-check` runs it on one)."""

import json
import subprocess
import sys

import pytest
import torch

from mindthegap import gpu_check
from mindthegap.generation import SamplingParams
from mindthegap.generation.hf import TransformersBackend


def test_teacher_forced_scores_equal_the_recorded_logprobs(tiny_model_dir):
    """fp32 on the CPU: the two computations agree to float rounding, per token, across padded batches."""
    backend = TransformersBackend(str(tiny_model_dir), batch_size=3, dtype="float32", device="cpu")
    prompts = ["1 + 2 =", "What is 12 + 30? Think.", "7"]
    completions = [c for per_prompt in backend.sample(prompts, SamplingParams(n=2, max_new_tokens=9, seed=3))
                   for c in per_prompt]
    prompt_ids = [backend.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts for _ in range(2)]
    scored = gpu_check.teacher_forced_logprobs(backend.model, prompt_ids, [c.token_ids for c in completions],
                                               batch_size=4, pad_id=backend.tokenizer.pad_token_id)
    for completion, ours in zip(completions, scored):
        assert len(ours) == len(completion.logprobs) > 0
        assert torch.allclose(torch.tensor(ours), torch.tensor(completion.logprobs), atol=1e-4)
    shifted = gpu_check.teacher_forced_logprobs(backend.model, [ids[:-1] for ids in prompt_ids],
                                                [c.token_ids for c in completions], batch_size=4,
                                                pad_id=backend.tokenizer.pad_token_id)
    gap = max(abs(a - b) for s, c in zip(shifted, completions) for a, b in zip(s, c.logprobs))
    assert gap > gpu_check.TOLERANCE["max_abs"], "a misaligned scoring must fail the check's tolerance"


def test_arithmetic_problems_carry_gradable_answers():
    problems = gpu_check.arithmetic_problems(5)
    assert list(problems.columns) == ["id", "problem", "solution", "answer"] and problems["id"].is_unique
    assert all(f"\\boxed{{{a}}}" in s for a, s in zip(problems["answer"], problems["solution"]))


@pytest.mark.slow
def test_gpu_check_runs_on_cpu_at_a_tiny_size(tmp_path):
    """The command itself, as `make gpu-check` runs it, with --device cpu and 2 steps per loss (~1-2 min)."""
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "mindthegap.gpu_check", "--device", "cpu", "--size", "tiny",
                           "--steps", "2", "--json", str(report)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "gpu-check: OK on cpu" in done.stdout
    figures = json.loads(report.read_text())
    size = gpu_check.SIZES["tiny"]
    assert figures["sampling"]["tokens"] > 0 and figures["sampling"]["tokens_per_s"] > 0
    assert figures["scoring"]["max_abs"] <= gpu_check.TOLERANCE["max_abs"]
    assert figures["scoring"]["tokens"] == figures["sampling"]["tokens"]
    assert set(figures["training"]) == set(gpu_check.LOSSES)
    assert all(result["step_s"] > 0 for result in figures["training"].values())
    assert sum(figures["evaluation"]["statuses"].values()) == size["problems"] * size["n"]
    for line in ("sampling (bf16, transformers): tokens=", "teacher-forced scoring: max_abs=",
                 "training is (2 steps, bf16 autocast, fp32 master weights): step_s="):
        assert line in done.stdout


def test_cli_has_a_gpu_check_verb():
    from mindthegap.cli import build_parser

    args = build_parser().parse_args(["gpu-check", "--device", "cpu", "--steps", "3"])
    assert (args.device, args.steps, args.size) == ("cpu", 3, None) and args.run is gpu_check.main
