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
        from vllm.inputs import tokens_input
        from vllm.sampling_params import RequestOutputKind

        # One seed per prompt, from its text: the same seed on every request would correlate the draws across
        # problems, and a resumed job draws the same samples again.
        seeds = [prompt_seed(params.seed, prompt) for prompt in prompts]
        engine = self.llm.llm_engine
        pending: dict[str, int] = {}
        try:
            for index, (ids, budget) in enumerate(zip(self._encode(prompts), max_new_tokens)):
                sampling = VLLMSamplingParams(**sampling_kwargs(params, max_tokens=budget, seed=seeds[index],
                                                                stop_token_ids=self.stop_token_ids),
                                              output_kind=RequestOutputKind.FINAL_ONLY)
                # Token input: the chat template already holds the special tokens, so nothing is added twice.
                request_id = f"mtg-{index}"
                engine.add_request(request_id, tokens_input(ids), sampling)
                pending[request_id] = index
            while engine.has_unfinished_requests():
                for output in engine.step():
                    if output.finished:  # FINAL_ONLY with n > 1: reported once, when all n samples are done
                        index = pending.pop(output.request_id)
                        yield index, [completion_from_output(o, seeds[index], output.request_id)
                                      for o in sorted(output.outputs, key=lambda o: o.index)]
        finally:
            if pending:  # the caller stopped early (an error): leave the engine empty for the next call
                engine.abort_request(list(pending))

    def _encode(self, prompts: list[str]) -> list[list[int]]:
        return [self.tokenizer.encode(prompt, add_special_tokens=False) for prompt in prompts]
