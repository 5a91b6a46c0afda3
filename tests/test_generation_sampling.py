import pandas as pd
import pytest
import torch

from mindthegap import demo
from mindthegap.generation import SamplingParams, load_backend
from mindthegap.sampling import prompt_renderer, sample_to_parquet, shard

PROMPTS = ["<|im_start|>user\nWhat is 1 + 2?<|im_end|>\n<|im_start|>assistant\n",
           "<|im_start|>user\nWhat is 34 * 5?<|im_end|>\n<|im_start|>assistant\n",
           "<|im_start|>user\nWhat is 7 + 8?<|im_end|>\n<|im_start|>assistant\n"]


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    return load_backend("transformers", str(tiny_model_dir), batch_size=2)


def test_sampled_logprobs_are_those_of_the_processed_distribution(backend):
    params = SamplingParams(n=3, temperature=0.7, top_p=1.0, max_new_tokens=12, seed=5)
    outputs = backend.sample(PROMPTS, params)
    assert [len(o) for o in outputs] == [3, 3, 3]
    tokenizer, model = backend.tokenizer, backend.model
    for prompt, completions in zip(PROMPTS, outputs):
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        for completion in completions:
            assert len(completion.token_ids) == len(completion.logprobs) > 0
            assert completion.finish_reason in ("stop", "length")
            if completion.finish_reason == "stop":
                assert completion.token_ids[-1] == tokenizer.eos_token_id
            else:
                assert len(completion.token_ids) == params.max_new_tokens
            # Teacher-forced scoring of the same tokens under logits / T must give the recorded log-probs.
            ids = torch.tensor([prompt_ids + completion.token_ids])
            with torch.no_grad():
                logits = model(ids).logits[0, len(prompt_ids) - 1:-1] / params.temperature
            expected = torch.log_softmax(logits.float(), -1).gather(1, torch.tensor(completion.token_ids)[:, None])
            assert torch.allclose(expected.squeeze(1), torch.tensor(completion.logprobs), atol=1e-4)


def test_sampling_is_seeded(backend):
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=10, seed=11)
    first = backend.sample(PROMPTS, params)
    again = backend.sample(PROMPTS, params)
    other = backend.sample(PROMPTS, SamplingParams(n=2, temperature=1.0, max_new_tokens=10, seed=12))
    ids = lambda out: [c.token_ids for cs in out for c in cs]  # noqa: E731
    assert ids(first) == ids(again)
    assert ids(first) != ids(other)


def test_vllm_stays_optional():
    import importlib.util
    import subprocess
    import sys

    code = ("import sys, mindthegap.generation, mindthegap.sampling, mindthegap.training, mindthegap.rewrite; "
            "assert 'vllm' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    if importlib.util.find_spec("vllm") is None:
        with pytest.raises(ImportError, match="backend: transformers"):
            load_backend("vllm", "some/model")


def test_unknown_backend_is_named():
    with pytest.raises(ValueError, match="unknown sampling backend 'tgi'"):
        load_backend("tgi", "x")


def test_shards_partition_the_problems():
    frame = pd.DataFrame({"id": [f"p{i}" for i in range(10)]})
    parts = [shard(frame, i, 3)["id"].tolist() for i in range(3)]
    assert sorted(sum(parts, [])) == frame["id"].tolist()
    with pytest.raises(ValueError):
        shard(frame, 3, 3)


class Interrupted(RuntimeError):
    pass


def test_sampling_resumes_after_a_kill(tiny_model_dir, tmp_path, caplog):
    """A job killed after its first chunk resumes from it and ends with the same output as an uninterrupted run."""
    problems = pd.DataFrame(demo.generate_problems("arith", 6, seed=3))
    render = prompt_renderer({"kind": "train", "template": "chat"}, str(tiny_model_dir))
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=8, seed=0)
    real = load_backend("transformers", str(tiny_model_dir), batch_size=4)
    calls = []

    class DiesAfterOneChunk:
        def sample(self, prompts, p):
            calls.append(len(prompts))
            if len(calls) > 1:
                raise Interrupted("SIGKILL stand-in")
            return real.sample(prompts, p)

    output = tmp_path / "shard.parquet"
    with pytest.raises(Interrupted):
        sample_to_parquet(problems, render, DiesAfterOneChunk, params, output, chunk_size=2)
    assert not output.exists()
    assert len(list((tmp_path / "shard.parquet.parts").glob("chunk-*.parquet"))) == 1

    calls.clear()

    class Counting:
        def sample(self, prompts, p):
            calls.append(len(prompts))
            return real.sample(prompts, p)

    with caplog.at_level("INFO"):
        summary = sample_to_parquet(problems, render, Counting, params, output, chunk_size=2)
    assert calls == [2, 2], "the first chunk must not be sampled again"
    assert "resumed" in caplog.text
    assert summary["samples"] == 12
    resumed = pd.read_parquet(output)
    fresh_path = tmp_path / "fresh.parquet"
    sample_to_parquet(problems, render, lambda: real, params, fresh_path, chunk_size=2)
    fresh = pd.read_parquet(fresh_path)
    assert resumed["completion"].tolist() == fresh["completion"].tolist()
    assert not (tmp_path / "shard.parquet.parts").exists()
    assert set(resumed.columns) >= {"problem_id", "sample_idx", "token_ids", "logprobs", "finish_reason", "seed"}


def test_stale_partial_samples_are_discarded(tiny_model_dir, tmp_path):
    problems = pd.DataFrame(demo.generate_problems("arith", 2, seed=3))
    render = prompt_renderer({"kind": "train", "template": "chat"}, str(tiny_model_dir))
    backend = load_backend("transformers", str(tiny_model_dir))
    parts = tmp_path / "s.parquet.parts"
    parts.mkdir()
    (parts / "chunk-0000000.parquet").write_text("from another run")
    sample_to_parquet(problems, render, lambda: backend, SamplingParams(n=1, max_new_tokens=4), tmp_path / "s.parquet")
    assert len(pd.read_parquet(tmp_path / "s.parquet")) == 2
