"""Shared fixtures: a tiny random model built locally (no download) and the repository paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import ROOT, SHARED, harness_benchmarks, plan_jobs



@pytest.fixture(scope="session")
def shared() -> Path:
    """../shared (real benchmark files); tests that need it skip with the reason when it is absent (CI: fail)."""
    harness_benchmarks()  # skips with the reason when ../shared is absent; fails under CI=true
    return SHARED


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random 2-layer Qwen2 with the demo tokenizer: enough to exercise sampling and training code paths."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from mindthegap import demo, prompts

    torch.manual_seed(0)
    corpus = [text for pair in demo.pretraining_corpus(200, 0, prompts.DEFAULT_GUIDED_TEMPLATE) for text in pair]
    tokenizer = demo.build_tokenizer(corpus)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
                         tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    path = tmp_path_factory.mktemp("tiny-model")
    Qwen2ForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
