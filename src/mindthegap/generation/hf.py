"""The transformers backend: sampling by batched `generate` with a KV cache, seeded per batch; scoring by batched
teacher-forced forward passes without a cache."""

from __future__ import annotations

import logging

import torch
from transformers import (AutoModelForCausalLM, AutoTokenizer, LogitsProcessor, LogitsProcessorList,
                          StoppingCriteria, StoppingCriteriaList, TemperatureLogitsWarper, TopPLogitsWarper)

from mindthegap.generation import Completion, SamplingParams
from mindthegap.generation.seeding import prompt_seed

log = logging.getLogger(__name__)

# Scoring memory bounds. A batch holds at most this many (padded) tokens, besides `batch_size` rows: hidden states
# and activations grow with it, never with the vocabulary. Logits are computed only for the positions that predict
# a completion token, at most this many elements at a time: 2^27 fp32 logits (512 MiB, and as much again for the
# logsumexp's temporary) are ~880 positions of a 152k vocabulary, where the logits of a whole 4k-token completion
# would take 2.3 GiB per row.
SCORE_BATCH_TOKENS = 16_384
SCORE_LOGIT_ELEMENTS = 2 ** 27


class SampledLogprobRecorder(LogitsProcessor):
    """Records log p(sampled token) under the final, processed distribution, in O(batch x vocab) memory.

    Placed last in the processor list, after our own temperature and top-p warpers, it sees the distribution that
    is sampled from. The token sampled appears in `input_ids` at the next call, so each call first scores the
    previous step's token.
    """

    def __init__(self) -> None:
        self.previous: torch.Tensor | None = None
        self.steps: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.previous is not None:
            self._score(input_ids[:, -1])
        self.previous = torch.log_softmax(scores.float(), dim=-1)
        return scores

    def _score(self, tokens: torch.Tensor) -> None:
        self.steps.append(self.previous.gather(1, tokens[:, None]).squeeze(1).cpu())

    def finish(self, sequences: torch.Tensor) -> torch.Tensor:
        """Per-step log-probs, shape (batch, generated length)."""
        if self.previous is not None:
            self._score(sequences[:, -1])
        return torch.stack(self.steps, dim=1) if self.steps else torch.zeros(sequences.shape[0], 0)


class RowBudget(StoppingCriteria):
    """Stops each row of a batch at its own number of new tokens (`generate` knows only one for the batch)."""

    def __init__(self, prompt_width: int, budgets: torch.Tensor) -> None:
        self.prompt_width = prompt_width
        self.budgets = budgets

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        generated = input_ids.shape[1] - self.prompt_width
        return (generated >= self.budgets).to(input_ids.device)


def context_window(config, max_model_len: int | None) -> int:
    """The configured window, else the model's own (`max_position_embeddings`)."""
    if max_model_len:
        return int(max_model_len)
    window = getattr(config, "max_position_embeddings", None)
    if not window:
        raise ValueError(f"{getattr(config, 'name_or_path', 'the model')}: its config has no max_position_embeddings;"
                         " set models.<name>.max_model_len in the config")
    return int(window)


class TransformersBackend:
    def __init__(self, model: str, *, revision: str | None = None, batch_size: int = 8, dtype: str = "auto",
                 device: str | None = None, stop_tokens: list[str] | None = None,
                 max_model_len: int | None = None) -> None:
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(model, revision=revision)
        self.tokenizer.padding_side = "left"  # generation continues each prompt from its last token
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        torch_dtype = {"auto": "auto", "bfloat16": torch.bfloat16, "float32": torch.float32}[dtype]
        self.model = AutoModelForCausalLM.from_pretrained(model, revision=revision, dtype=torch_dtype)
        self.model.to(self.device).eval()
        self.max_model_len = context_window(self.model.config, max_model_len)
        self.batch_size = batch_size
        self.score_batch_tokens = SCORE_BATCH_TOKENS
        self.score_logit_elements = SCORE_LOGIT_ELEMENTS
        self.stop_ids = sorted({self.tokenizer.eos_token_id,
                                *(self.tokenizer.convert_tokens_to_ids(t) for t in stop_tokens or [])})

    def prompt_lengths(self, prompts: list[str]) -> list[int]:
        return [len(ids) for ids in self.tokenizer(prompts, add_special_tokens=False)["input_ids"]]

    def sample(self, prompts: list[str], params: SamplingParams,
               max_new_tokens: list[int] | None = None) -> list[list[Completion]]:
        budgets = max_new_tokens or [params.max_new_tokens] * len(prompts)
        results: list[list[Completion]] = []
        for start in range(0, len(prompts), self.batch_size):
            batch = prompts[start: start + self.batch_size]
            results.extend(self._sample_batch(batch, budgets[start: start + self.batch_size], params,
                                              prompt_seed(params.seed, batch[0])))
        return results

    @torch.inference_mode()
    def _sample_batch(self, prompts: list[str], budgets: list[int], params: SamplingParams,
                      seed: int) -> list[list[Completion]]:
        torch.manual_seed(seed)
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        # Row i*n + j of the output is sample j of prompt i. A row past its budget only receives padding (it may
        # run on past its context window while longer budgets finish: rotary positions allow it, and it is cut).
        row_budgets = torch.tensor(budgets).repeat_interleave(params.n)
        stop_at_budget = RowBudget(encoded["input_ids"].shape[1], row_budgets.to(self.device))
        recorder = SampledLogprobRecorder()
        greedy = params.temperature == 0
        # The whole processing chain is ours and explicit: a model's generation_config defaults (top_k,
        # repetition_penalty, its own temperature) would otherwise change the behaviour policy silently.
        processors = [] if greedy else [TemperatureLogitsWarper(params.temperature)]
        if not greedy and params.top_p < 1.0:
            processors.append(TopPLogitsWarper(params.top_p))
        output = self.model.generate(
            **encoded, do_sample=not greedy, temperature=1.0, top_p=1.0, top_k=0, repetition_penalty=1.0,
            max_new_tokens=max(budgets), num_return_sequences=params.n,
            logits_processor=LogitsProcessorList([*processors, recorder]),
            stopping_criteria=StoppingCriteriaList([stop_at_budget]),
            eos_token_id=self.stop_ids, pad_token_id=self.tokenizer.pad_token_id,
        )
        generated = output[:, encoded["input_ids"].shape[1]:].cpu()
        logprobs = recorder.finish(output.cpu())
        completions = [self._completion(generated[row], logprobs[row], int(row_budgets[row]), seed)
                       for row in range(len(generated))]
        return [completions[i * params.n:(i + 1) * params.n] for i in range(len(prompts))]

    def _completion(self, tokens: torch.Tensor, logprobs: torch.Tensor, budget: int, seed: int) -> Completion:
        ids = tokens[:budget].tolist()  # what follows the budget is padding (which may be the EOS id)
        stop_at = next((i for i, token in enumerate(ids) if token in self.stop_ids), None)
        finish = "stop" if stop_at is not None else "length"
        end = stop_at + 1 if stop_at is not None else len(ids)
        ids = ids[:end]
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        return Completion(text=text, token_ids=ids, logprobs=logprobs[:end].tolist(), finish_reason=finish, seed=seed)

    def score(self, prompts: list[str], completions: list[list[int]]) -> list[list[float]]:
        """Teacher-forced log-probs of each completion after its prompt (see `Backend.score`).

        Right-padded batches (every row starts at position 0, so no position ids are needed, and the padding comes
        after every real token, which causal attention never looks past), longest rows first so that rows of
        similar length share a batch; at most `batch_size` rows and `score_batch_tokens` padded tokens a batch.
        """
        if len(prompts) != len(completions):
            raise ValueError(f"score: {len(prompts)} prompts but {len(completions)} completions")
        if not prompts:
            return []
        prompt_ids = self.tokenizer(prompts, add_special_tokens=False)["input_ids"]
        completion_ids = [[int(token) for token in completion] for completion in completions]
        self._check_scorable(prompt_ids, completion_ids)
        results: list[list[float]] = [[] for _ in prompts]
        for batch in self._scoring_batches([len(p) + len(c) for p, c in zip(prompt_ids, completion_ids)]):
            scored = self._score_batch([prompt_ids[i] for i in batch], [completion_ids[i] for i in batch])
            for index, logprobs in zip(batch, scored):
                results[index] = logprobs
        return results

    def _check_scorable(self, prompt_ids: list[list[int]], completion_ids: list[list[int]]) -> None:
        for index, (prompt, completion) in enumerate(zip(prompt_ids, completion_ids)):
            if not prompt:
                raise ValueError(f"score: prompt {index} is empty (no token to condition its first completion "
                                 "token on)")
            if len(prompt) + len(completion) > self.max_model_len:
                raise ValueError(f"score: prompt {index} ({len(prompt)} tokens) + completion ({len(completion)}) "
                                 f"exceed the {self.max_model_len}-token context window")

    def _scoring_batches(self, lengths: list[int]) -> list[list[int]]:
        """Row indices per batch, longest first; a row longer than the token budget goes alone."""
        batches: list[list[int]] = []
        for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
            last = batches[-1] if batches else []
            # rows come longest first: the batch's first row sets its padded width
            if 0 < len(last) < self.batch_size and lengths[last[0]] * (len(last) + 1) <= self.score_batch_tokens:
                last.append(index)
            else:
                batches.append([index])
        return batches

    @torch.inference_mode()
    def _score_batch(self, prompt_ids: list[list[int]], completion_ids: list[list[int]]) -> list[list[float]]:
        sequences = [prompt + completion for prompt, completion in zip(prompt_ids, completion_ids)]
        width = max(map(len, sequences))
        ids = torch.full((len(sequences), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, sequence in enumerate(sequences):
            ids[row, :len(sequence)] = torch.tensor(sequence)
            mask[row, :len(sequence)] = 1
        # The hidden state at position t predicts token t + 1: the first completion token is predicted at the
        # prompt's last position.
        rows = torch.cat([torch.full((len(c),), row) for row, c in enumerate(completion_ids)])
        positions = torch.cat([torch.arange(len(p) - 1, len(p) - 1 + len(c))
                               for p, c in zip(prompt_ids, completion_ids)])
        if len(positions) == 0:
            return [[] for _ in sequences]
        hidden = self._backbone()(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                  use_cache=False).last_hidden_state
        targets = torch.tensor([token for completion in completion_ids for token in completion])
        logprobs = self._target_logprobs(hidden, rows, positions, targets)
        return [part.tolist() for part in logprobs.split([len(c) for c in completion_ids])]

    def _target_logprobs(self, hidden: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor,
                         targets: torch.Tensor) -> torch.Tensor:
        """log softmax(head(hidden))[target] per (row, position), in fp32, a chunk of positions at a time: the
        full log-softmax of a batch is never materialised."""
        head = self.model.get_output_embeddings()
        chunk = max(1, self.score_logit_elements // head.weight.shape[0])
        parts = []
        for start in range(0, len(targets), chunk):
            where = slice(start, start + chunk)
            logits = head(hidden[rows[where].to(self.device), positions[where].to(self.device)]).float()
            target = logits.gather(1, targets[where, None].to(self.device)).squeeze(1)
            parts.append((target - logits.logsumexp(dim=-1)).cpu())
        return torch.cat(parts)

    def _backbone(self):
        """The model without its output head. Scoring applies the head itself, chunk by chunk, as a plain linear
        map: right for the paper's models (Qwen2, Llama) and most causal LMs, wrong for those that scale or cap
        their logits after it, which are refused."""
        config = self.model.config
        for attribute in ("final_logit_softcapping", "logit_scale", "logits_scaling"):
            if getattr(config, attribute, None) not in (None, 1, 1.0):
                raise NotImplementedError(f"score: {type(self.model).__name__} post-processes its logits "
                                          f"({attribute}={getattr(config, attribute)}); chunked scoring applies "
                                          "the output head as a plain linear map")
        return self.model.base_model
