"""Prompt templates: evaluation (as the Qwen2.5-Math harness writes them), training and guided re-solving.

A template turns a problem (and, for guided re-solving, the expert solution) into the exact text the model sees.
Chat templates are applied with the model's own tokenizer so that special tokens match the model.
"""

from __future__ import annotations

from typing import Any

BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."

# The guided re-solving prompt ("digest and retell"): the paper's exact wording is not released.
DEFAULT_GUIDED_TEMPLATE = (
    "{problem}\n\nHere is a reference solution:\n{solution}\n\n"
    "Digest the reference solution, then solve the problem yourself; put the final answer within \\boxed{{}}."
)

EVAL_TEMPLATES = ("chat", "qwen-boxed", "qwen25-math-cot", "deepseek-math", "llama3.1")


def _chat(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"tokenizer {getattr(tokenizer, 'name_or_path', '?')!r} has no chat template; "
                         "choose a plain template such as 'deepseek-math'")
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def render(template: str, problem: str, tokenizer: Any) -> str:
    """The prompt text for `problem` under a named template."""
    if template == "chat":  # the training prompt of the paper: chat template + raw problem
        return _chat(tokenizer, [{"role": "user", "content": problem}])
    if template == "qwen-boxed":
        return (
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            f"<|im_start|>user\n{problem}\n{BOXED_INSTRUCTION}<|im_end|>\n<|im_start|>assistant\n"
        )
    if template == "qwen25-math-cot":
        return (
            f"<|im_start|>system\n{BOXED_INSTRUCTION}<|im_end|>\n"
            f"<|im_start|>user\n{problem}<|im_end|>\n<|im_start|>assistant\n"
        )
    if template == "deepseek-math":
        return f"User: {problem}\n{BOXED_INSTRUCTION}\n\nAssistant:"
    if template == "llama3.1":  # the Llama-3 header format of the paper's DFT fork, via the model's own template
        return _chat(tokenizer, [{"role": "user", "content": f"{problem}\n{BOXED_INSTRUCTION}"}])
    raise ValueError(f"unknown prompt template {template!r}; valid: {', '.join(EVAL_TEMPLATES)}")


def render_guided(problem: str, solution: str, tokenizer: Any, template: str = DEFAULT_GUIDED_TEMPLATE) -> str:
    """The hint prompt: the expert solution shown as a reference. Never used as a training prompt."""
    try:
        content = template.format(problem=problem, solution=solution)
    except (KeyError, IndexError) as err:
        raise ValueError(f"guided template must use only {{problem}} and {{solution}}: {err!r}") from err
    return _chat(tokenizer, [{"role": "user", "content": content}])
