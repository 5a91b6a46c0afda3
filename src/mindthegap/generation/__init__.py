"""Sampling with one interface and two backends.

`transformers` is the CPU default (and works on a GPU); `vllm` is the GPU backend of the paper-scale runs, imported
lazily so that nothing else ever needs vLLM installed. Both return, per prompt, `n` completions with their token ids
and the log-probabilities of the sampled tokens under the processed (temperature / top-p) sampling distribution:
the behaviour policy that the importance-sampling loss needs.

Every backend knows its context window (`max_model_len`) and counts prompt tokens exactly as it will tokenize
them, so the caller can give each prompt its own budget of new tokens (`max_new_tokens` per prompt): prompt +
completion always fit the window. A backend that can return prompts as they finish, instead of all at the end of
a call, also has `stream` (the vLLM backend: see `mindthegap.sampling` for why that matters).

Both also score fixed continuations (`score`): teacher-forced, the log-prob of each given completion token after
the prompt and the completion tokens before it, under the model's own distribution (temperature 1, no top-p). At
temperature 1 and top-p 1 that is the very quantity `sample` records, so scoring what was sampled gives back its
recorded log-probs (up to the numerics of a cached vs a full forward pass).
"""

from __future__ import annotations

from collections.abc import Iterator
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
    # "stop": a stop token was sampled; "length": cut at the budget of new tokens (max_new_tokens, or the room left
    # in the context window); "prompt_too_long" (set by mindthegap.sampling, never by a backend): not sampled.
    finish_reason: str
    seed: int = 0
    extra: dict = field(default_factory=dict)


class Backend(Protocol):
    max_model_len: int  # prompt + completion tokens the model holds

    def prompt_lengths(self, prompts: list[str]) -> list[int]:
        """Token count of each prompt, tokenized as `sample` tokenizes it."""

    def sample(self, prompts: list[str], params: SamplingParams,
               max_new_tokens: list[int] | None = None) -> list[list[Completion]]:
        """n completions for each prompt, in prompt order; `max_new_tokens`: a budget per prompt that replaces
        `params.max_new_tokens` (the caller keeps it within the context window)."""

    def score(self, prompts: list[str], completions: list[list[int]]) -> list[list[float]]:
        """Teacher-forced log p(token | prompt, earlier completion tokens) for every token id of each completion
        (the prompt is tokenized as `sample` tokenizes it; the completion is given as token ids, as `sample`
        returns them, so nothing is re-tokenized). The model's raw distribution: temperature 1, no top-p.
        Prompt + completion must fit the context window (vLLM: with one token to spare)."""


class StreamingBackend(Backend, Protocol):
    def stream(self, prompts: list[str], params: SamplingParams,
               max_new_tokens: list[int]) -> Iterator[tuple[int, list[Completion]]]:
        """(prompt index, its n completions) as soon as all n are finished, in completion order."""


def load_backend(name: str, model: str, *, revision: str | None = None, **options) -> Backend:
    """A sampling backend for a model path or hub id; `options` are backend-specific (batch size, dtype, ...)."""
    if name == "transformers":
        from mindthegap.generation.hf import TransformersBackend

        return TransformersBackend(model, revision=revision, **options)
    if name == "vllm":
        from mindthegap.generation.vllm import VLLMBackend

        return VLLMBackend(model, revision=revision, **options)
    raise ValueError(f"unknown sampling backend {name!r}; valid: {', '.join(BACKENDS)}")
