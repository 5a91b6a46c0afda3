from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from mindthegap import demo
from mindthegap.generation import SamplingParams, load_backend
from mindthegap.generation.vllm import completion_from_output, engine_kwargs, sampling_kwargs
from mindthegap.sampling import PROMPT_TOO_LONG, prompt_renderer, resume_key, sample_to_parquet, shard

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


class Relay:
    """The real transformers backend behind a hook: counts calls and can die at a chosen call (a kill stand-in)."""

    def __init__(self, real, die_at_call: int | None = None):
        self.real, self.die_at_call, self.calls = real, die_at_call, []
        self.max_model_len = real.max_model_len

    def prompt_lengths(self, prompts):
        return self.real.prompt_lengths(prompts)

    def sample(self, prompts, params, max_new_tokens=None):
        self.calls.append(len(prompts))
        if len(self.calls) == self.die_at_call:
            raise Interrupted("SIGKILL stand-in")
        return self.real.sample(prompts, params, max_new_tokens)


class StreamingRelay(Relay):
    """The real backend's samples handed back as a streaming engine would: one problem at a time, out of order."""

    def stream(self, prompts, params, max_new_tokens):
        outputs = self.real.sample(prompts, params, max_new_tokens)
        for count, index in enumerate(reversed(range(len(prompts))), start=1):
            if count == self.die_at_call:
                raise Interrupted("SIGKILL stand-in")
            self.calls.append(index)
            yield index, outputs[index]


@pytest.fixture(scope="module")
def arith(tiny_model_dir):
    problems = pd.DataFrame(demo.generate_problems("arith", 6, seed=3))
    return problems, prompt_renderer({"kind": "train", "template": "chat"}, str(tiny_model_dir))


def test_sampling_resumes_after_a_kill(tiny_model_dir, tmp_path, caplog, arith):
    """A job killed after its first chunk resumes from it and ends with the same output as an uninterrupted run."""
    problems, render = arith
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=8, seed=0)
    real = load_backend("transformers", str(tiny_model_dir), batch_size=4)
    output = tmp_path / "shard.parquet"
    dying = Relay(real, die_at_call=2)
    with pytest.raises(Interrupted):
        sample_to_parquet(problems, render, lambda: dying, params, output, chunk_size=2)
    assert not output.exists()
    assert len(list((tmp_path / "shard.parquet.parts").glob("part-*.parquet"))) == 1

    counting = Relay(real)
    with caplog.at_level("INFO"):
        summary = sample_to_parquet(problems, render, lambda: counting, params, output, chunk_size=2)
    assert counting.calls == [2, 2], "the first chunk must not be sampled again"
    assert "resumed" in caplog.text
    assert summary["samples"] == 12
    resumed = pd.read_parquet(output)
    fresh_path = tmp_path / "fresh.parquet"
    sample_to_parquet(problems, render, lambda: real, params, fresh_path, chunk_size=2)
    fresh = pd.read_parquet(fresh_path)
    assert resumed["completion"].tolist() == fresh["completion"].tolist()
    assert not (tmp_path / "shard.parquet.parts").exists()
    assert set(resumed.columns) >= {"problem_id", "sample_idx", "token_ids", "logprobs", "finish_reason", "seed"}


def test_streamed_problems_are_persisted_as_they_finish(tiny_model_dir, tmp_path, arith):
    """A streaming backend's finished problems are flushed every chunk_size; a kill keeps them; the output is in
    problem order whatever the order of completion."""
    problems, render = arith
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=8, seed=0)
    real = load_backend("transformers", str(tiny_model_dir), batch_size=8)
    output = tmp_path / "streamed.parquet"
    with pytest.raises(Interrupted):
        sample_to_parquet(problems, render, lambda: StreamingRelay(real, die_at_call=4), params, output,
                          chunk_size=2)
    parts = sorted((tmp_path / "streamed.parquet.parts").glob("part-*.parquet"))
    assert [len(pd.read_parquet(p)) for p in parts] == [4], "three problems were done: one flush of two"

    again = StreamingRelay(real)
    summary = sample_to_parquet(problems, render, lambda: again, params, output, chunk_size=2)
    assert sorted(again.calls) == [0, 1, 2, 3], "the two persisted problems are not sampled again"
    frame = pd.read_parquet(output)
    assert frame["problem_id"].tolist() == [pid for pid in problems["id"] for _ in range(2)]
    assert frame["sample_idx"].tolist() == [0, 1] * 6
    assert summary == {"problems": 6, "samples": 12, "truncated": summary["truncated"], "prompt_too_long": 0,
                       "budget_clamped": 0}


def test_stale_partial_samples_are_discarded(tiny_model_dir, tmp_path):
    problems = pd.DataFrame(demo.generate_problems("arith", 2, seed=3))
    render = prompt_renderer({"kind": "train", "template": "chat"}, str(tiny_model_dir))
    backend = load_backend("transformers", str(tiny_model_dir))
    parts = tmp_path / "s.parquet.parts"
    parts.mkdir()
    (parts / "part-000000.parquet").write_text("from another run")
    sample_to_parquet(problems, render, lambda: backend, SamplingParams(n=1, max_new_tokens=4), tmp_path / "s.parquet")
    assert len(pd.read_parquet(tmp_path / "s.parquet")) == 2


def _killed_run(real, problems, render, output, **keys):
    with pytest.raises(Interrupted):
        sample_to_parquet(problems, render, lambda: Relay(real, die_at_call=2),
                          SamplingParams(n=1, max_new_tokens=4), output, chunk_size=2, **keys)


@pytest.mark.parametrize("change", ["revision", "backend_options", "prompt", "template"])
def test_a_changed_run_never_reuses_stale_parts(tiny_model_dir, tmp_path, arith, change):
    problems, render = arith
    real = load_backend("transformers", str(tiny_model_dir), batch_size=4)
    base = dict(model=str(tiny_model_dir), revision=None, backend="transformers",
                backend_options={"batch_size": 4, "max_model_len": 64}, prompt={"kind": "train", "template": "chat"})
    output = tmp_path / "s.parquet"
    _killed_run(real, problems, render, output, resume_key=resume_key(**base))
    changed = dict(base)
    new_render = render
    if change == "revision":
        changed["revision"] = "0123abcd"
    elif change == "backend_options":
        changed["backend_options"] = {"batch_size": 4, "max_model_len": 128}
    elif change == "prompt":
        changed["prompt"] = {"kind": "guided", "template": "other"}
    else:  # the same spec, but the rendered prompts differ (e.g. another chat template in the tokenizer)
        new_render = lambda row: render(row) + " "  # noqa: E731
    relay = Relay(real)
    sample_to_parquet(problems, new_render, lambda: relay, SamplingParams(n=1, max_new_tokens=4), output,
                      chunk_size=2, resume_key=resume_key(**changed))
    assert relay.calls == [2, 2, 2], f"a changed {change} must resample every problem"


def test_resume_key_sees_a_rebuilt_local_model(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    before = resume_key(model=str(model), revision=None, backend="transformers", backend_options={})
    (model / "model.safetensors").write_bytes(b"weights")
    after = resume_key(model=str(model), revision=None, backend="transformers", backend_options={})
    assert before != after
    hub = resume_key(model="Qwen/Qwen2.5-Math-7B", revision="main", backend="vllm",
                     backend_options={"tensor_parallel_size": 1})
    assert hub == {"model": "Qwen/Qwen2.5-Math-7B", "revision": "main", "backend": "vllm",
                   "backend_options": {"tensor_parallel_size": 1}, "prompt": None}


def test_the_context_window_defaults_to_the_model_config(tiny_model_dir):
    assert load_backend("transformers", str(tiny_model_dir)).max_model_len == 512
    assert load_backend("transformers", str(tiny_model_dir), max_model_len=64).max_model_len == 64


def test_each_prompt_gets_its_own_budget(backend):
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=50, seed=3)
    outputs = backend.sample(PROMPTS, params, [3, 9, 1])
    for budget, completions in zip([3, 9, 1], outputs):
        for completion in completions:
            assert 0 < len(completion.token_ids) <= budget
            assert completion.finish_reason == ("length" if len(completion.token_ids) == budget
                                                and completion.token_ids[-1] != backend.tokenizer.eos_token_id
                                                else "stop")
            assert len(completion.logprobs) == len(completion.token_ids)


def test_prompts_beyond_the_window_are_skipped_and_the_rest_fit(tiny_model_dir, tmp_path, caplog):
    """A prompt that fills the window is not sampled (recorded, counted, logged); the others get the room left."""
    rows = demo.generate_problems("arith", 3, seed=3)
    rows[1]["problem"] = " + ".join(["1"] * 60) + " = ?"  # far longer than the window below
    problems = pd.DataFrame(rows)
    render = prompt_renderer({"kind": "train", "template": "chat"}, str(tiny_model_dir))
    backend = load_backend("transformers", str(tiny_model_dir), max_model_len=40)
    lengths = backend.prompt_lengths([render(row) for row in rows])
    assert lengths[1] >= 40 and max(lengths[0], lengths[2]) < 40 - 4, "the test needs one prompt beyond the window"
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=64, seed=0)
    with caplog.at_level("INFO"):
        summary = sample_to_parquet(problems, render, lambda: backend, params, tmp_path / "s.parquet")
    frame = pd.read_parquet(tmp_path / "s.parquet")
    skipped = frame[frame["problem_id"] == rows[1]["id"]]
    assert skipped["finish_reason"].tolist() == [PROMPT_TOO_LONG] * 2
    assert skipped["completion"].tolist() == ["", ""] and skipped["max_new_tokens"].tolist() == [0, 0]
    sampled = frame[frame["finish_reason"] != PROMPT_TOO_LONG]
    assert len(sampled) == 4
    assert ((sampled["prompt_tokens"] + sampled["num_tokens"]) <= 40).all()
    assert (sampled["max_new_tokens"] == 40 - sampled["prompt_tokens"]).all(), "the budget is the room left"
    assert summary["prompt_too_long"] == 1 and summary["budget_clamped"] == 2 and summary["samples"] == 4
    assert "do not fit the 40-token context window" in caplog.text and rows[1]["id"] in caplog.text


def test_vllm_arguments_are_built_by_pure_functions():
    kwargs = engine_kwargs("Qwen/Qwen2.5-Math-7B", revision="abc", max_model_len=4096, tensor_parallel_size=2)
    assert kwargs["logprobs_mode"] == "processed_logprobs"
    assert kwargs["revision"] == kwargs["tokenizer_revision"] == "abc" and kwargs["max_model_len"] == 4096
    sampling = sampling_kwargs(SamplingParams(n=16, temperature=1.0, top_p=1.0, max_new_tokens=4096, seed=0),
                               max_tokens=1000, seed=7, stop_token_ids=[2])
    assert sampling == {"n": 16, "temperature": 1.0, "top_p": 1.0, "max_tokens": 1000, "seed": 7, "logprobs": 0,
                        "stop_token_ids": [2], "skip_special_tokens": True}


def test_vllm_outputs_are_read_into_completions():
    class Logprob:  # the shape of vllm.logprobs.Logprob
        def __init__(self, logprob):
            self.logprob = logprob

    def output(finish_reason, index=1):
        return SimpleNamespace(index=index, text="4", token_ids=(5, 2), finish_reason=finish_reason,
                               logprobs=[{5: Logprob(-0.5)}, {2: Logprob(-0.25)}])

    completion = completion_from_output(output("stop"), seed=10)
    assert (completion.token_ids, completion.logprobs, completion.seed) == ([5, 2], [-0.5, -0.25], 11)
    assert completion_from_output(output("length"), seed=0).finish_reason == "length"
    with pytest.raises(RuntimeError, match="request r7, sample 1: finished with 'abort'"):
        completion_from_output(output("abort"), seed=0, request_id="r7")
