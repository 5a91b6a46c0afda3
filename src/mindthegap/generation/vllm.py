"""The vLLM sampling backend (GPU), written against vLLM 0.33's offline API.

Imported only when `backend: vllm` is chosen: the rest of the package never needs vLLM. What we pass to vLLM is
built by the small pure functions below (`engine_kwargs`, `sampling_kwargs`) and what we read back by
`completion_from_output`; `tests/vllm_contract/check_vllm_contract.py` checks them against the real package.

- `logprobs_mode="processed_logprobs"` (an engine argument) makes the returned log-probs those of the distribution
  actually sampled from (after temperature / top-p): the behaviour policy of the IS loss, the same quantity the
  transformers backend records.
- Requests go to the `LLM`'s engine (`LLMEngine.add_request`, our own request ids) and the engine is stepped
  here as `LLM.generate` steps it, except that each prompt is handed back as soon as its n samples are finished
  (`stream`): the caller persists finished problems while the engine stays full (see `mindthegap.sampling` and
  benchmarks/chunking/).
- vLLM refuses a prompt that fills the window and caps prompt + output at `max_model_len`; the caller passes a
  budget per prompt that already fits, so neither happens here.
- Scoring (`score`) sends prompt + completion token ids as the prompt of a request with `prompt_logprobs=0` and
  `max_tokens=1` (`scoring_kwargs`), and reads the completion's positions of `RequestOutput.prompt_logprobs`
  (`scores_from_output`). In vLLM 0.33 prompt log-probs are the fp32 log-softmax of the raw logits: prompt tokens
  skip the sampling processors, so `logprobs_mode` "processed_logprobs" and "raw_logprobs" give the same values,
  and neither temperature nor top-p applies. They are the sampled log-probs at temperature 1, top-p 1 only.
  `prompt_logprobs=k` returns, per position, the top-k tokens plus the prompt's own token (first entry `None`: the
  first token has no context); k=0 returns the prompt's token alone. vLLM skips reading the prefix cache for such
  requests (SamplingParams sets `skip_reading_prefix_cache`), so every position is computed, not cached.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mindthegap.generation import Completion, SamplingParams
from mindthegap.generation.seeding import prompt_seed

FINISH_REASONS = ("stop", "length")  # vLLM's others ("abort", "error", "repetition") are failures here


def engine_kwargs(model: str, *, revision: str | None = None, tensor_parallel_size: int = 1,
                  dtype: str = "bfloat16", gpu_memory_utilization: float = 0.9, max_model_len: int | None = None,
                  seed: int = 0) -> dict[str, Any]:
    """Keyword arguments of `vllm.LLM` (and of `vllm.EngineArgs`, which LLM forwards them to)."""
    return {"model": model, "revision": revision, "tokenizer_revision": revision, "dtype": dtype,
            "tensor_parallel_size": tensor_parallel_size, "gpu_memory_utilization": gpu_memory_utilization,
            "max_model_len": max_model_len, "seed": seed, "logprobs_mode": "processed_logprobs"}


def sampling_kwargs(params: SamplingParams, *, max_tokens: int, seed: int, stop_token_ids: list[int]) -> dict:
    """Keyword arguments of `vllm.SamplingParams` for one prompt and its n samples.

    Sample j of the prompt is drawn with seed `seed + j` (vLLM gives each of the n child requests the parent's
    seed plus its index). Stops are token ids, not strings: special tokens are skipped in the text, so a stop
    string would never match.
    """
    return {"n": params.n, "temperature": params.temperature, "top_p": params.top_p, "max_tokens": max_tokens,
            "seed": seed, "logprobs": 0, "stop_token_ids": stop_token_ids, "skip_special_tokens": True}


def completion_from_output(output, seed: int, request_id: str = "?") -> Completion:
    """Our Completion from a `vllm.CompletionOutput` (sample `output.index` of a request seeded `seed`)."""
    if output.finish_reason not in FINISH_REASONS:
        raise RuntimeError(f"vLLM request {request_id}, sample {output.index}: finished with "
                           f"{output.finish_reason!r}, not one of {FINISH_REASONS}")
    ids = list(output.token_ids)
    # logprobs=0: per position, a mapping that holds just the sampled token's Logprob.
    logprobs = [step[token].logprob for step, token in zip(output.logprobs, ids)]
    return Completion(text=output.text, token_ids=ids, logprobs=logprobs, finish_reason=output.finish_reason,
                      seed=seed + output.index)


def scoring_kwargs() -> dict:
    """Keyword arguments of `vllm.SamplingParams` for teacher-forced scoring: the prompt log-probs of the prompt's
    own tokens only (k=0), one greedy token generated and discarded (vLLM generates at least one), and no
    detokenization of either."""
    return {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0, "detokenize": False}


def scores_from_output(output, completion_length: int) -> list[float]:
    """The log-probs of the last `completion_length` prompt tokens from a `vllm.RequestOutput` of scoring."""
    ids, logprobs = output.prompt_token_ids, output.prompt_logprobs
    if logprobs is None or len(logprobs) != len(ids):
        raise RuntimeError(f"vLLM request {output.request_id}: {0 if logprobs is None else len(logprobs)} prompt "
                           f"log-probs for {len(ids)} prompt tokens")
    first = len(ids) - completion_length
    return [logprobs[position][ids[position]].logprob for position in range(first, len(ids))]


class VLLMBackend:
    def __init__(self, model: str, *, revision: str | None = None, tensor_parallel_size: int = 1,
                 dtype: str = "bfloat16", gpu_memory_utilization: float = 0.9, max_model_len: int | None = None,
                 stop_tokens: list[str] | None = None, seed: int = 0, batch_size: int | None = None) -> None:
        # batch_size is the transformers backend's option; vLLM schedules its own batches.
        try:
            from vllm import LLM
        except ImportError as err:
            raise ImportError("the vllm sampling backend needs vLLM (envs/sampling.yaml, or pip install "
                              "'mindthegap[vllm]'); on a machine without a GPU use backend: transformers") from err

        self.llm = LLM(**engine_kwargs(model, revision=revision, tensor_parallel_size=tensor_parallel_size,
                                       dtype=dtype, gpu_memory_utilization=gpu_memory_utilization,
                                       max_model_len=max_model_len, seed=seed))
        self.tokenizer = self.llm.get_tokenizer()
        # The window vLLM resolved: the configured one, else the model's own.
        self.max_model_len = self.llm.llm_engine.model_config.max_model_len
        self.stop_token_ids = sorted({self.tokenizer.eos_token_id,
                                      *self.tokenizer.convert_tokens_to_ids(stop_tokens or [])})

    def prompt_lengths(self, prompts: list[str]) -> list[int]:
        return [len(ids) for ids in self._encode(prompts)]

    def sample(self, prompts: list[str], params: SamplingParams,
               max_new_tokens: list[int] | None = None) -> list[list[Completion]]:
        budgets = max_new_tokens or [params.max_new_tokens] * len(prompts)
        results: list[list[Completion] | None] = [None] * len(prompts)
        for index, completions in self.stream(prompts, params, budgets):
            results[index] = completions
        return results

    def stream(self, prompts: list[str], params: SamplingParams,
               max_new_tokens: list[int]) -> Iterator[tuple[int, list[Completion]]]:
        from vllm import SamplingParams as VLLMSamplingParams
        from vllm.sampling_params import RequestOutputKind

        # One seed per prompt, from its text: the same seed on every request would correlate the draws across
        # problems, and a resumed job draws the same samples again.
        seeds = [prompt_seed(params.seed, prompt) for prompt in prompts]
        requests = [(ids, VLLMSamplingParams(**sampling_kwargs(params, max_tokens=budget, seed=seed,
                                                               stop_token_ids=self.stop_token_ids),
                                             output_kind=RequestOutputKind.FINAL_ONLY))
                    for ids, budget, seed in zip(self._encode(prompts), max_new_tokens, seeds)]
        for index, output in self._run(requests):
            yield index, [completion_from_output(o, seeds[index], output.request_id)
                          for o in sorted(output.outputs, key=lambda o: o.index)]

    def score(self, prompts: list[str], completions: list[list[int]]) -> list[list[float]]:
        """Teacher-forced log-probs of each completion after its prompt (see `Backend.score` and the module's
        docstring): prompt + completion must leave one token of the window free, for the token vLLM generates."""
        from vllm import SamplingParams as VLLMSamplingParams
        from vllm.sampling_params import RequestOutputKind

        if len(prompts) != len(completions):
            raise ValueError(f"score: {len(prompts)} prompts but {len(completions)} completions")
        completion_ids = [[int(token) for token in completion] for completion in completions]
        sequences = [prompt + completion for prompt, completion in zip(self._encode(prompts), completion_ids)]
        for index, (sequence, completion) in enumerate(zip(sequences, completion_ids)):
            if len(sequence) == len(completion):
                raise ValueError(f"score: prompt {index} is empty (no token to condition its first completion "
                                 "token on)")
            if len(sequence) >= self.max_model_len:
                raise ValueError(f"score: prompt {index} + completion ({len(sequence)} tokens) leave no room in "
                                 f"the {self.max_model_len}-token window for the one token vLLM generates")
        scoring = VLLMSamplingParams(**scoring_kwargs(), output_kind=RequestOutputKind.FINAL_ONLY)
        results: list[list[float]] = [[] for _ in prompts]
        for index, output in self._run([(sequence, scoring) for sequence in sequences]):
            results[index] = scores_from_output(output, len(completion_ids[index]))
        return results

    def _run(self, requests: list[tuple[list[int], Any]]) -> Iterator[tuple[int, Any]]:
        """(request index, its final `RequestOutput`) for each (prompt token ids, vllm.SamplingParams), as each
        request finishes: the engine is stepped here as `LLM.generate` steps it."""
        from vllm.inputs import tokens_input

        engine = self.llm.llm_engine
        pending: dict[str, int] = {}
        try:
            for index, (ids, sampling) in enumerate(requests):
                # Token input: the chat template already holds the special tokens, so nothing is added twice.
                request_id = f"mtg-{index}"
                engine.add_request(request_id, tokens_input(ids), sampling)
                pending[request_id] = index
            while engine.has_unfinished_requests():
                for output in engine.step():
                    if output.finished:  # FINAL_ONLY with n > 1: reported once, when all n samples are done
                        yield pending.pop(output.request_id), output
        finally:
            if pending:  # the caller stopped early (an error): leave the engine empty for the next call
                engine.abort_request(list(pending))

    def _encode(self, prompts: list[str]) -> list[list[int]]:
        return [self.tokenizer.encode(prompt, add_special_tokens=False) for prompt in prompts]
