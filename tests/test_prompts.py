import pytest
from transformers import AutoTokenizer

from helpers import load_config
from mindthegap import prompts
from real_tokenizers import llama31_tokenizer, qwen25_tokenizer

# A question with the characters that break naive templating: braces, backslashes, a trailing newline.
QUESTION = "Find $x$ if $\\frac{x}{2} = \\{1, 2\\}$.\n"

# The texts the paper's harness sent, written out by hand from its sources (see mindthegap.prompts): Qwen2.5-Math
# `evaluation/utils.py` ("qwen-boxed") and the fixed Llama-3.1-8B-Instruct string of the fork's `math_eval.py`.
QWEN_BOXED = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n" + QUESTION
              + "\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
              "<|im_start|>assistant\n")
LLAMA31_HARNESS = ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
                   "December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
                   + QUESTION + "\nLet's think step by step and output the final answer within \\boxed{}.<|eot_id|>"
                   "<|start_header_id|>assistant<|end_header_id|>\n\n")


@pytest.fixture(scope="module")
def qwen():
    return qwen25_tokenizer()


@pytest.fixture(scope="module")
def llama():
    return llama31_tokenizer()


def test_templates(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    chat = prompts.render("chat", "What is 1 + 1?", tokenizer)
    assert chat == "<|im_start|>user\nWhat is 1 + 1?<|im_end|>\n<|im_start|>assistant\n"
    assert prompts.render("qwen-boxed", QUESTION, tokenizer) == QWEN_BOXED  # this tokenizer adds no BOS
    assert prompts.render("deepseek-math", "Q", tokenizer) == (
        "User: Q\nPlease reason step by step, and put your final answer within \\boxed{}.\n\nAssistant:")
    with pytest.raises(ValueError, match="unknown prompt template 'nope'"):
        prompts.render("nope", "Q", tokenizer)


def test_qwen_prompt_is_the_harness_text_and_its_ids(qwen):
    rendered = prompts.render("qwen-boxed", QUESTION, qwen)
    assert rendered == QWEN_BOXED
    ids = qwen(rendered, add_special_tokens=False)["input_ids"]
    assert ids == qwen(QWEN_BOXED)["input_ids"]  # as vLLM tokenized the harness's text prompt
    assert ids[:8] == [151644, 8948, 198, 2610, 525, 264, 10950, 17847]  # <|im_start|>system\nYou are a helpful


def test_llama_prompt_is_the_harness_text_with_its_double_bos(llama, qwen):
    rendered = prompts.render("llama31-harness", QUESTION, llama)
    assert rendered == "<|begin_of_text|>" + LLAMA31_HARNESS  # the BOS vLLM added, written into the text
    ids = llama(rendered, add_special_tokens=False)["input_ids"]
    assert ids == llama(LLAMA31_HARNESS)["input_ids"]  # as vLLM tokenized the harness's text prompt
    assert ids[:8] == [128000, 128000, 128006, 9125, 128007, 271, 38766, 1303]  # BOS BOS <|start_header_id|>system
    assert prompts.harness_prefix(llama) == "<|begin_of_text|>" and prompts.harness_prefix(qwen) == ""


def test_chat_prompt_keeps_the_single_bos_of_the_chat_template(llama):
    ids = llama(prompts.render("chat", "Q", llama), add_special_tokens=False)["input_ids"]
    assert ids[:2] == [128000, 128006]


def test_a_tokenizer_that_appends_special_tokens_is_refused(tiny_model_dir):
    from tokenizers import processors

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    eos = tokenizer.eos_token
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A:0 {eos}:0", special_tokens=[(eos, tokenizer.eos_token_id)])
    with pytest.raises(ValueError, match="adds special tokens after the text"):
        prompts.render("qwen-boxed", "Q", tokenizer)


@pytest.mark.parametrize("model, build, template, stop_ids", [
    # the harness's stop_token_ids for "qwen2" model paths
    ("qwen25_math_7b", qwen25_tokenizer, "qwen-boxed", {151645, 151643}),
    # no stop ids in the harness for Llama: vLLM stops at the EOS ids of the model's generation_config.json
    # (<|end_of_text|>, <|eom_id|>, <|eot_id|>); special tokens never reach the text, so its stop strings cannot match
    ("llama31_8b_instruct", llama31_tokenizer, "llama31-harness", {128001, 128008, 128009}),
])
def test_paper_config_uses_the_harness_prompt_and_stop_ids(model, build, template, stop_ids):
    cfg = load_config("config.yaml")["models"][model]
    tokenizer = build()
    assert cfg["eval_template"] == template
    # what both backends stop on: the tokenizer's EOS and the model's stop tokens
    assert {tokenizer.eos_token_id, *tokenizer.convert_tokens_to_ids(cfg["stop_tokens"])} == stop_ids


def test_guided_prompt_shows_the_solution_but_training_prompt_does_not(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    guided = prompts.render_guided("What is 12 * 3?", "12 * 3 = 36. \\boxed{36}", tokenizer)
    assert "12 * 3 = 36" in guided and guided.endswith("<|im_start|>assistant\n")
    assert "36" not in prompts.render("chat", "What is 12 * 3?", tokenizer)
