"""Sampling with one interface and two backends.

`transformers` is the CPU default (and works on a GPU); `vllm` is the GPU backend of the paper-scale runs, imported
lazily so that nothing else ever needs vLLM installed. Both return, per prompt, `n` completions with their token ids
and the log-probabilities of the sampled tokens under the processed (temperature / top-p) sampling distribution:
the behaviour policy that the importance-sampling loss needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

BACKENDS = ("transformers", "vllm")


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    seed: int = 0


@dataclass
class Completion:
    text: str
    token_ids: list[int]
    logprobs: list[float]
    finish_reason: str  # "stop" (an end-of-sequence token was sampled) or "length"
    seed: int = 0
    extra: dict = field(default_factory=dict)


class Backend(Protocol):
    def sample(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        """n completions for each prompt, in prompt order."""


def load_backend(name: str, model: str, *, revision: str | None = None, **options) -> Backend:
    """A sampling backend for a model path or hub id; `options` are backend-specific (batch size, dtype, ...)."""
    if name == "transformers":
        from mindthegap.generation.hf import TransformersBackend

        return TransformersBackend(model, revision=revision, **options)
    if name == "vllm":
        from mindthegap.generation.vllm import VLLMBackend

        return VLLMBackend(model, revision=revision, **options)
    raise ValueError(f"unknown sampling backend {name!r}; valid: {', '.join(BACKENDS)}")
