"""The GPU check (mindthegap.gpu_check) runs on the CPU at a tiny size (no GPU here; `make gpu-check` runs it on
one). The scoring it relies on (`Backend.score`) is tested in tests/test_scoring.py."""

import json
import subprocess
import sys

import pytest

from mindthegap import gpu_check, objectives


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
    assert set(figures["training"]) == set(gpu_check.LOSSES) == set(objectives.REGISTRY)
    assert all(result["step_s"] > 0 for result in figures["training"].values())
    assert sum(figures["evaluation"]["statuses"].values()) == size["problems"] * size["n"]
    for line in ("sampling (bf16, transformers): tokens=", "teacher-forced scoring: max_abs=",
                 "training is (2 steps, bf16 autocast, fp32 master weights): step_s="):
        assert line in done.stdout


def test_cli_has_a_gpu_check_verb():
    from mindthegap.cli import build_parser

    args = build_parser().parse_args(["gpu-check", "--device", "cpu", "--steps", "3"])
    assert (args.device, args.steps, args.size) == ("cpu", 3, None) and args.run is gpu_check.main
