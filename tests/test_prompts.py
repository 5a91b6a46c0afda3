import pytest
from transformers import AutoTokenizer

from mindthegap import prompts


def test_templates(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    chat = prompts.render("chat", "What is 1 + 1?", tokenizer)
    assert chat == "<|im_start|>user\nWhat is 1 + 1?<|im_end|>\n<|im_start|>assistant\n"
    boxed = prompts.render("qwen-boxed", "Q", tokenizer)
    assert boxed.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>")
    assert "Q\nPlease reason step by step, and put your final answer within \\boxed{}." in boxed
    assert prompts.render("deepseek-math", "Q", tokenizer).endswith("\n\nAssistant:")
    with pytest.raises(ValueError, match="unknown prompt template 'nope'"):
        prompts.render("nope", "Q", tokenizer)


def test_guided_prompt_shows_the_solution_but_training_prompt_does_not(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    guided = prompts.render_guided("What is 12 * 3?", "12 * 3 = 36. \\boxed{36}", tokenizer)
    assert "12 * 3 = 36" in guided and guided.endswith("<|im_start|>assistant\n")
    assert "36" not in prompts.render("chat", "What is 12 * 3?", tokenizer)
