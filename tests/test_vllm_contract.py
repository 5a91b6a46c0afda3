"""The vLLM contract: our vLLM backend's `SamplingParams` and `LLM(...)` arguments, checked by the real vLLM 0.33.

vLLM pins its own torch (2.14.0, CUDA build), so it lives in its own virtual environment, `.venv-vllm`, built by
`make vllm-venv` from envs/sampling.yaml's pip list. tests/vllm_contract/check_vllm_contract.py runs there (no
GPU needed) and exits non-zero when vLLM rejects an argument or lacks an output field the backend reads.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from helpers import ROOT

VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
CHECK = ROOT / "tests" / "vllm_contract" / "check_vllm_contract.py"
TIMEOUT_S = 600


def test_vllm_accepts_the_backends_arguments():
    if not VLLM_PYTHON.exists():
        message = f"{VLLM_PYTHON.parent.parent.name} is absent: `make vllm-venv` installs the real vLLM (~10 GB)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI must build it before the tests (.ci/run)")
        pytest.skip(message)
    assert CHECK.is_file(), f"{CHECK.relative_to(ROOT)} is missing: the contract has no check to run"
    result = subprocess.run([str(VLLM_PYTHON), str(CHECK)], cwd=ROOT, capture_output=True, text=True,
                            timeout=TIMEOUT_S)
    assert result.returncode == 0, (
        f"{CHECK.relative_to(ROOT)} failed under {VLLM_PYTHON.relative_to(ROOT)} (exit {result.returncode}):\n"
        f"{result.stdout[-6000:]}\n{result.stderr[-6000:]}")
