"""Sample solutions for a list of problems and store them with token ids and behaviour log-probs.

Work is written in chunks beside the output (`<output>.parts/`), which is not a declared Snakemake output: a killed
or requeued job resumes from the chunks already there, and only a finished run publishes the output file.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from mindthegap.generation import Backend, SamplingParams
from mindthegap.io import write_json, write_parquet

log = logging.getLogger(__name__)

SAMPLE_COLUMNS = ["problem_id", "sample_idx", "prompt", "completion", "token_ids", "logprobs", "finish_reason",
                  "seed", "num_tokens"]


def shard(frame: pd.DataFrame, index: int, count: int) -> pd.DataFrame:
    """Rows of shard `index` of `count` (round-robin, so shards are balanced across difficulty)."""
    if not 0 <= index < count:
        raise ValueError(f"shard index {index} out of range for {count} shards")
    return frame.iloc[index::count].reset_index(drop=True)


def sample_to_parquet(problems: pd.DataFrame, render: Callable[[dict[str, Any]], str], backend_factory:
                      Callable[[], Backend], params: SamplingParams, output: str | Path, chunk_size: int = 64) -> dict:
    """Sample `params.n` completions per problem; resumable; returns a small summary."""
    output = Path(output)
    parts = output.with_name(output.name + ".parts")
    fingerprint = {"params": asdict(params), "ids": problems["id"].tolist(), "chunk_size": chunk_size}
    _reset_if_stale(parts, fingerprint)
    backend = None
    chunks = []
    for start in range(0, len(problems), chunk_size):
        chunk_path = parts / f"chunk-{start:07d}.parquet"
        if not chunk_path.exists():
            backend = backend or backend_factory()
            rows = problems.iloc[start:start + chunk_size].to_dict("records")
            write_parquet(_sample_rows(rows, render, backend, params), chunk_path)
            log.info("sampled %d/%d problems", min(start + chunk_size, len(problems)), len(problems))
        else:
            log.info("resumed: chunk %s already sampled", chunk_path.name)
        chunks.append(pd.read_parquet(chunk_path))
    frame = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=SAMPLE_COLUMNS)
    write_parquet(frame, output)
    shutil.rmtree(parts, ignore_errors=True)
    return {"problems": len(problems), "samples": len(frame),
            "truncated": int((frame["finish_reason"] == "length").sum()) if len(frame) else 0}


def _reset_if_stale(parts: Path, fingerprint: dict) -> None:
    marker = parts / "fingerprint.json"
    if parts.exists() and (not marker.exists() or json.loads(marker.read_text()) != fingerprint):
        log.info("discarding partial samples in %s: made with other settings", parts)
        shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    if not marker.exists():
        write_json(fingerprint, marker)


def _sample_rows(rows: list[dict[str, Any]], render, backend: Backend, params: SamplingParams) -> pd.DataFrame:
    prompts = [render(row) for row in rows]
    outputs = backend.sample(prompts, params)
    records = []
    for row, prompt, completions in zip(rows, prompts, outputs):
        for index, completion in enumerate(completions):
            records.append({"problem_id": row["id"], "sample_idx": index, "prompt": prompt,
                            "completion": completion.text, "token_ids": completion.token_ids,
                            "logprobs": completion.logprobs, "finish_reason": completion.finish_reason,
                            "seed": completion.seed, "num_tokens": len(completion.token_ids)})
    return pd.DataFrame(records, columns=SAMPLE_COLUMNS)


def prompt_renderer(spec: dict[str, str], model: str, revision: str | None = None) -> Callable[[dict], str]:
    """row -> prompt text. kind 'train' or 'eval': a named template of the problem; 'guided': the hint prompt."""
    from transformers import AutoTokenizer

    from mindthegap import prompts

    tokenizer = AutoTokenizer.from_pretrained(model, revision=revision)
    if spec["kind"] == "guided":
        return lambda row: prompts.render_guided(row["problem"], row["solution"], tokenizer, spec["template"])
    if spec["kind"] in ("train", "eval"):
        return lambda row: prompts.render(spec["template"], row["problem"], tokenizer)
    raise ValueError(f"unknown prompt kind {spec['kind']!r}; valid: train, eval, guided")
