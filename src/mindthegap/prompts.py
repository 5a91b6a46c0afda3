"""Prompt templates: evaluation (byte-identical to the paper's harness), training and guided re-solving.

A template turns a problem (and, for guided re-solving, the expert solution) into the exact text the model sees.
Chat templates are applied with the model's own tokenizer so that special tokens match the model.

Every rendered prompt is the whole model input: both backends tokenize it with `add_special_tokens=False`, so its
token ids follow from the text alone and the stored prompt is what the model was given.

The double BOS of Llama-3.1-8B-Instruct (decision: reproduced). The paper's harness passed its prompt text to vLLM,
which tokenizes a text prompt with the tokenizer's default special tokens: for Llama 3 that prepends
<|begin_of_text|>, and the harness's fixed Llama string already starts with one. The paper's Llama numbers were
therefore measured on prompts that start with two BOS tokens. We reproduce that, so that our table and the
paper's differ by the training and not by the prompt: `render` writes the special tokens that the harness's
tokenization added in front of every harness template (`harness_prefix`), i.e. one more <|begin_of_text|> for
Llama 3 and nothing for Qwen, whose tokenizer adds none.
"""

from __future__ import annotations

from typing import Any

# The guided re-solving prompt ("digest and retell"): the paper's exact wording is not released.
DEFAULT_GUIDED_TEMPLATE = (
    "{problem}\n\nHere is a reference solution:\n{solution}\n\n"
    "Digest the reference solution, then solve the problem yourself; put the final answer within \\boxed{{}}."
)

# The harness's stop words (math_eval.py): generation stops at any of them and the text is cut at the first one
# before the answer is extracted. Our backends stop on the models' stop token ids; the text is cut at these too.
HARNESS_STOP_STRINGS = ("</s>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>",
                        "<\uff5cend\u2581of\u2581sentence\uff5c>")

# Evaluation prompts as the paper's harness wrote them, in the harness's own `str.format` form ({{}} is a literal
# {}). qwen-boxed, qwen25-math-cot, deepseek-math: QwenLM/Qwen2.5-Math `evaluation/utils.py`, PROMPT_TEMPLATES
# (its `construct_prompt` then strips spaces at both ends: a no-op for these). llama31-harness: the fixed string
# of the paper's fork (NKU-HLT/Off-Policy-SFT `math_evaluation/math_eval.py`), which replaces the prompt type for
# every model path containing "meta-llama-3.1-8b-instruct"; its instruction differs from qwen-boxed's.
HARNESS_TEMPLATES = {
    "qwen-boxed": (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n{question}\nPlease reason step by step, and put your final answer within \\boxed{{}}."
        "<|im_end|>\n<|im_start|>assistant\n"
    ),
    "qwen25-math-cot": (
        "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{{}}.<|im_end|>\n"
        "<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
    ),
    "deepseek-math": (
        "User: {question}\nPlease reason step by step, and put your final answer within \\boxed{{}}.\n\nAssistant:"
    ),
    "llama31-harness": (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
        "Today Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n{question}\n"
        "Let's think step by step and output the final answer within \\boxed{{}}.<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    ),
}

# "chat": the model's own chat template with the raw problem (the paper's training prompt; the demo's evaluation).
EVAL_TEMPLATES = ("chat", *HARNESS_TEMPLATES)


def _chat(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"tokenizer {getattr(tokenizer, 'name_or_path', '?')!r} has no chat template; "
                         "choose a plain template such as 'deepseek-math'")
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def harness_prefix(tokenizer: Any) -> str:
    """The special tokens that the tokenizer's default encoding puts before any text, as text.

    This is what vLLM added to each text prompt of the harness (`add_special_tokens=True`): "<|begin_of_text|>" for
    Llama 3, "" for Qwen. Probed on a one-character text, so it follows the tokenizer's own post-processor.
    """
    plain = tokenizer("x", add_special_tokens=False)["input_ids"]
    default = tokenizer("x")["input_ids"]
    prefix, rest = default[:len(default) - len(plain)], default[len(default) - len(plain):]
    if rest != plain:
        raise ValueError(f"tokenizer {getattr(tokenizer, 'name_or_path', '?')!r} adds special tokens after the text "
                         f"({default} for 'x', {plain} without special tokens): a harness prompt cannot be rendered "
                         "as text for it")
    return "".join(tokenizer.convert_ids_to_tokens(prefix))


def render(template: str, problem: str, tokenizer: Any) -> str:
    """The model input for `problem` under a named template (token ids = its encoding without special tokens)."""
    if template == "chat":  # the training prompt of the paper: chat template + raw problem
        return _chat(tokenizer, [{"role": "user", "content": problem}])
    if template in HARNESS_TEMPLATES:
        return harness_prefix(tokenizer) + HARNESS_TEMPLATES[template].format(question=problem)
    raise ValueError(f"unknown prompt template {template!r}; valid: {', '.join(EVAL_TEMPLATES)}")


def render_guided(problem: str, solution: str, tokenizer: Any, template: str = DEFAULT_GUIDED_TEMPLATE) -> str:
    """The hint prompt: the expert solution shown as a reference. Never used as a training prompt."""
    try:
        content = template.format(problem=problem, solution=solution)
    except (KeyError, IndexError) as err:
        raise ValueError(f"guided template must use only {{problem}} and {{solution}}: {err!r}") from err
    return _chat(tokenizer, [{"role": "user", "content": content}])
