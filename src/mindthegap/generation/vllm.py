"""The vLLM sampling backend (GPU) -- written against vLLM's offline `LLM.generate` API.

Imported only when `backend: vllm` is chosen: the rest of the package never needs vLLM.
`logprobs_mode="processed_logprobs"` makes the returned log-probs those of the distribution actually sampled from
(after temperature / top-p), which is the behaviour policy of the IS loss -- the same quantity the transformers
backend records.
"""

from __future__ import annotations

from mindthegap.generation import Completion, SamplingParams
from mindthegap.generation.seeding import prompt_seed


class VLLMBackend:
    def __init__(self, model: str, *, revision: str | None = None, tensor_parallel_size: int = 1,
                 dtype: str = "bfloat16", gpu_memory_utilization: float = 0.9, max_model_len: int | None = None,
                 stop_tokens: list[str] | None = None, seed: int = 0, batch_size: int | None = None) -> None:
        try:
            from vllm import LLM
        except ImportError as err:
            raise ImportError("the vllm sampling backend needs vLLM (envs/sampling.yaml, or pip install "
                              "'mindthegap[vllm]'); on a machine without a GPU use backend: transformers") from err

        self.llm = LLM(model=model, revision=revision, tokenizer_revision=revision, dtype=dtype,
                       tensor_parallel_size=tensor_parallel_size, gpu_memory_utilization=gpu_memory_utilization,
                       max_model_len=max_model_len, seed=seed, logprobs_mode="processed_logprobs")
        self.stop_tokens = stop_tokens or []

    def sample(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        from vllm import SamplingParams as VSamplingParams
        from vllm.inputs import TokensPrompt

        tokenizer = self.llm.get_tokenizer()
        # Stop on token ids, not strings: special tokens are skipped in the text, so a stop string never matches.
        stop_ids = sorted({tokenizer.eos_token_id, *tokenizer.convert_tokens_to_ids(self.stop_tokens)})
        # One seed per prompt: the same seed on every request would correlate the draws across problems.
        seeds = [prompt_seed(params.seed, prompt) for prompt in prompts]
        sampling = [VSamplingParams(n=params.n, temperature=params.temperature, top_p=params.top_p,
                                    max_tokens=params.max_new_tokens, seed=seed, logprobs=0,
                                    stop_token_ids=stop_ids, skip_special_tokens=True) for seed in seeds]
        # Token prompts: the chat template already holds the special tokens, so nothing is added twice.
        requests = [TokensPrompt(prompt_token_ids=tokenizer.encode(p, add_special_tokens=False)) for p in prompts]
        outputs = self.llm.generate(requests, sampling, use_tqdm=True)
        return [[self._completion(o, seed) for o in request.outputs] for request, seed in zip(outputs, seeds)]

    @staticmethod
    def _completion(output, seed: int) -> Completion:
        ids = list(output.token_ids)
        # logprobs=0 returns, per position, a dict holding just the sampled token's Logprob.
        logprobs = [step[token].logprob for step, token in zip(output.logprobs, ids)]
        finish = "stop" if output.finish_reason == "stop" else "length"
        return Completion(text=output.text, token_ids=ids, logprobs=logprobs, finish_reason=finish, seed=seed)
