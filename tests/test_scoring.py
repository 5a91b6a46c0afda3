"""Teacher-forced scoring of fixed continuations (`Backend.score`): the transformers backend on the CPU, and the vLLM
backend's request arguments and output reading (checked against the real vLLM by tests/vllm_contract/)."""

from types import SimpleNamespace

import pytest
import torch

from mindthegap import gpu_check
from mindthegap.generation import SamplingParams
from mindthegap.generation.hf import TransformersBackend
from mindthegap.generation.vllm import scores_from_output, scoring_kwargs

# Prompts of different lengths, so that batches are padded; the first is the second's last tokens dropped.
PROMPTS = ["<|im_start|>user\nWhat is 12 + 30?<|im_end|>\n<|im_start|>assistant\n",
           "<|im_start|>user\nWhat is 1 + 2?<|im_end|>\n<|im_start|>assistant\n",
           "<|im_start|>user\n7<|im_end|>\n"]
# fp32 on the CPU, cached generation vs one full forward pass: float rounding, far below a misalignment (nats)
FP32_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    return TransformersBackend(str(tiny_model_dir), batch_size=4, dtype="float32", device="cpu")


@pytest.fixture(scope="module")
def sampled(backend):
    """(prompt, completion) of 2 samples per prompt at temperature 1, top-p 1: their recorded log-probs are the
    model's raw ones, which scoring computes. A budget per prompt makes their lengths differ even when the random
    model never draws EOS."""
    outputs = backend.sample(PROMPTS, SamplingParams(n=2, temperature=1.0, top_p=1.0, max_new_tokens=16, seed=3),
                             max_new_tokens=[16, 11, 6])
    pairs = [(prompt, completion) for prompt, completions in zip(PROMPTS, outputs) for completion in completions]
    assert len({len(c.token_ids) for _, c in pairs}) > 1, "the test needs completions of different lengths"
    return pairs


def _max_gap(scored, expected) -> float:
    assert [len(s) for s in scored] == [len(e) for e in expected]
    return max(abs(a - b) for s, e in zip(scored, expected) for a, b in zip(s, e))


def test_scoring_what_was_sampled_gives_back_the_recorded_logprobs(backend, sampled):
    scored = backend.score([prompt for prompt, _ in sampled], [c.token_ids for _, c in sampled])
    gap = _max_gap(scored, [c.logprobs for _, c in sampled])
    print(f"max |scored - recorded| = {gap:.3g} over {sum(map(len, scored))} tokens")
    assert gap <= FP32_TOLERANCE


def test_the_same_completion_under_another_prompt_scores_differently(backend, sampled):
    """Scores depend on the prompt: another prompt moves them by far more than float rounding (the random tiny
    model's distributions are near uniform, so not by much more), and a prompt cut by one token (a misalignment)
    by more than the GPU check's bf16 tolerance."""
    completions = [c.token_ids for _, c in sampled]
    other = backend.score([PROMPTS[(PROMPTS.index(prompt) + 1) % len(PROMPTS)] for prompt, _ in sampled],
                          completions)
    assert _max_gap(other, [c.logprobs for _, c in sampled]) > 100 * FP32_TOLERANCE
    shifted_prompts = [backend.tokenizer.decode(backend.tokenizer(p, add_special_tokens=False)["input_ids"][:-1])
                       for p, _ in sampled]
    shifted = backend.score(shifted_prompts, completions)
    assert _max_gap(shifted, [c.logprobs for _, c in sampled]) > gpu_check.TOLERANCE["max_abs"]


def test_a_batch_scores_as_each_row_alone(backend, sampled):
    """Padding, the longest-first batching (results back in input order) and the chunked log-softmax change
    nothing: the batch is split into several batches and each into chunks of 3 positions."""
    prompts, completions = [p for p, _ in sampled], [c.token_ids for _, c in sampled]
    alone = [backend.score([p], [c])[0] for p, c in zip(prompts, completions)]
    vocab = backend.model.get_output_embeddings().weight.shape[0]
    default_tokens, default_elements = backend.score_batch_tokens, backend.score_logit_elements
    try:
        backend.score_batch_tokens, backend.score_logit_elements = 70, 3 * vocab
        assert len(backend._scoring_batches([len(p) + len(c) for p, c in
                                             zip(backend.tokenizer(prompts)["input_ids"], completions)])) > 1
        chunked = backend.score(prompts, completions)
    finally:
        backend.score_batch_tokens, backend.score_logit_elements = default_tokens, default_elements
    together = backend.score(prompts, completions)
    assert _max_gap(together, alone) <= 1e-5 and _max_gap(chunked, alone) <= 1e-5


def test_empty_completions_and_bad_inputs(backend):
    assert [len(scores) for scores in backend.score(PROMPTS[:2], [[], [5]])] == [0, 1]
    assert backend.score([], []) == []
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        backend.score(PROMPTS[:2], [[5]])
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        backend.score([PROMPTS[0], ""], [[5], [5]])
    with pytest.raises(ValueError, match=r"prompt 0 \(\d+ tokens\) \+ completion \(600\) exceed the 512-token"):
        backend.score([PROMPTS[0]], [[5] * 600])


def test_scoring_a_real_vocabulary_in_chunks(tmp_path):
    """Qwen2.5-Math's real tokenizer (152k rows) on a random Qwen2: the chunked target log-probs equal the full
    log-softmax of the model's own logits."""
    model_dir = gpu_check.build_model(tmp_path / "qwen", gpu_check.SIZES["tiny"])
    backend = TransformersBackend(str(model_dir), batch_size=2, dtype="float32", device="cpu")
    backend.score_logit_elements = 5 * backend.model.config.vocab_size  # 5 positions a chunk
    prompt = "<|im_start|>user\nCompute $2 + 3$.<|im_end|>\n<|im_start|>assistant\n"
    completion = backend.tokenizer("The answer is $\\boxed{5}$.<|im_end|>", add_special_tokens=False)["input_ids"]
    scored = backend.score([prompt, prompt], [completion, completion[:4]])
    prompt_ids = backend.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = backend.model(torch.tensor([prompt_ids + completion])).logits[0, len(prompt_ids) - 1:-1]
    expected = torch.log_softmax(logits.float(), -1).gather(1, torch.tensor(completion)[:, None]).squeeze(1)
    assert _max_gap(scored, [expected.tolist(), expected[:4].tolist()]) <= FP32_TOLERANCE


def test_vllm_scoring_requests_prompt_logprobs_and_reads_the_completion_positions():
    assert scoring_kwargs() == {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0, "detokenize": False}

    class Logprob:  # the shape of vllm.logprobs.Logprob
        def __init__(self, logprob):
            self.logprob = logprob

    # prompt [1, 7] + completion [5, 2]: vLLM's first entry is None, then one {token: Logprob} per position
    output = SimpleNamespace(request_id="mtg-0", prompt_token_ids=[1, 7, 5, 2],
                             prompt_logprobs=[None, {7: Logprob(-3.0)}, {5: Logprob(-0.5), 9: Logprob(-0.1)},
                                              {2: Logprob(-0.25)}])
    assert scores_from_output(output, 2) == [-0.5, -0.25]
    assert scores_from_output(output, 0) == []
    with pytest.raises(RuntimeError, match="mtg-0: 0 prompt log-probs for 4 prompt tokens"):
        scores_from_output(SimpleNamespace(request_id="mtg-0", prompt_token_ids=[1, 7, 5, 2], prompt_logprobs=None),
                           2)
