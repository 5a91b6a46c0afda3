"""Seeds derived from content, not position: a resumed or requeued job draws the same samples again."""

from __future__ import annotations

import hashlib


def prompt_seed(base_seed: int, prompt: str) -> int:
    """A stable 32-bit seed for (base seed, prompt)."""
    return int.from_bytes(hashlib.sha256(f"{base_seed}:{prompt}".encode()).digest()[:4], "little")
