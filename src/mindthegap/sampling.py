"""Sample solutions for a list of problems and store them with token ids and behaviour log-probs.

Resumable: finished problems are written in parts beside the output (`<output>.parts/part-*.parquet`, not a declared
Snakemake output). A killed or requeued job samples only the problems that no part holds yet, and only a finished
run publishes the output file. The parts are kept only while their resume key (`fingerprint.json`: the problems and
their rendered prompts, the sampling settings, and the caller's `resume_key`: model, revision, backend, backend
options) is unchanged; any other run discards them.

Context window: a prompt of p tokens gets min(max_new_tokens, max_model_len - p) new tokens, recorded per sample in
`max_new_tokens`; its samples cut there end with finish reason "length", like any other cut. This is what vLLM did
in the paper's harness (max_tokens 4096 with Qwen2.5-Math-7B's 4096-token window: every generation was capped at
the window), so evaluation keeps the harness's behaviour, and rewriting never trains on a cut sample anyway. A
prompt with no room left (p >= max_model_len; a guided prompt carries a whole expert solution) is not sampled: its
n rows say `finish_reason = "prompt_too_long"` with an empty completion, so evaluation counts it as failed n times
(the harness's vLLM answered such prompts with nothing) and rewriting falls through to the next source.

Scheduling: a backend with `stream` (vLLM) gets every problem of the shard at once and hands back each problem as
soon as its n samples are done; finished problems are flushed every `chunk_size` problems or `flush_seconds`. One
blocking call per chunk would instead wait, every chunk, for the chunk's longest sample while the engine drains:
benchmarks/chunking/ puts 64-problem chunks at 38 % of the engine's throughput and streaming at 98 %, and a kill
loses about as much work either way. Other backends (transformers) are called chunk by chunk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mindthegap.generation import Backend, Completion, SamplingParams, StreamingBackend
from mindthegap.io import DataError, atomic_path, write_json

log = logging.getLogger(__name__)

PROMPT_TOO_LONG = "prompt_too_long"
SAMPLE_SCHEMA = pa.schema([
    ("problem_id", pa.string()), ("sample_idx", pa.int64()), ("prompt", pa.string()), ("completion", pa.string()),
    ("token_ids", pa.list_(pa.int64())), ("logprobs", pa.list_(pa.float64())), ("finish_reason", pa.string()),
    ("seed", pa.int64()), ("num_tokens", pa.int64()),
    ("prompt_tokens", pa.int64()),  # the prompt's length in tokens
    ("max_new_tokens", pa.int64()),  # the budget this sample had: min(max_new_tokens, room left in the window)
])
SAMPLE_COLUMNS = SAMPLE_SCHEMA.names


def shard(frame: pd.DataFrame, index: int, count: int) -> pd.DataFrame:
    """Rows of shard `index` of `count` (round-robin, so shards are balanced across difficulty)."""
    if not 0 <= index < count:
        raise ValueError(f"shard index {index} out of range for {count} shards")
    return frame.iloc[index::count].reset_index(drop=True)


def sample_to_parquet(problems: pd.DataFrame, render: Callable[[dict[str, Any]], str], backend_factory:
                      Callable[[], Backend], params: SamplingParams, output: str | Path, chunk_size: int = 64, *,
                      resume_key: dict[str, Any] | None = None, flush_seconds: float = 60.0) -> dict:
    """Sample `params.n` completions per problem; resumable; returns a summary (also logged).

    `chunk_size`: problems per call of a chunked backend, and per flush of a streaming one. `resume_key`: what
    else decides the samples (see `resume_key()`); partial work made under another key is discarded.
    """
    output = Path(output)
    parts = output.with_name(output.name + ".parts")
    ids = problems["id"].tolist()
    _check_unique(ids, output)
    prompts = [render(row) for row in problems.to_dict("records")]
    fingerprint = {"params": asdict(params), "chunk_size": chunk_size, "resume_key": resume_key or {},
                   "problems_and_prompts_sha256": _digest(ids, prompts)}
    reset_if_stale(parts, fingerprint)
    done = _problems_on_disk(parts)
    todo = [i for i, problem_id in enumerate(ids) if problem_id not in done]
    if done:
        log.info("resumed: %d of %d problems already sampled in %s", len(ids) - len(todo), len(ids), parts)
    if todo:
        _sample_missing(ids, prompts, todo, backend_factory(), params, _PartWriter(parts), chunk_size, flush_seconds)
    table = _gather(parts, ids)
    with atomic_path(output) as tmp:
        pq.write_table(table, tmp)
    shutil.rmtree(parts, ignore_errors=True)
    summary = summarize(table, params)
    log.info("summary: %s", summary)
    return summary


def resume_key(*, model: str, revision: str | None, backend: str, backend_options: dict[str, Any],
               prompt: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything outside the problems, prompts and SamplingParams that changes the samples.

    A local model directory (the demo's, a converted checkpoint) is named by its files' sizes and modification
    times too: rebuilt in place, it keeps its path. All backend options count (batch size included: the
    transformers backend seeds each batch), so a changed option costs at most the partial work of one shard.
    """
    key = {"model": model, "revision": revision, "backend": backend, "backend_options": backend_options,
           "prompt": prompt}
    if Path(model).is_dir():
        key["model_files"] = _directory_signature(Path(model))
    return json.loads(json.dumps(key, sort_keys=True, default=str))


def budgets(prompt_lengths: list[int], max_new_tokens: int, max_model_len: int) -> list[int]:
    """New tokens each prompt may get so that prompt + completion fit the window; 0: the prompt does not fit."""
    return [max(0, min(max_new_tokens, max_model_len - length)) for length in prompt_lengths]


def summarize(table: pa.Table, params: SamplingParams) -> dict[str, int]:
    frame = table.select(["problem_id", "finish_reason", "max_new_tokens"]).to_pandas()
    finish = frame["finish_reason"]
    per_problem = frame.drop_duplicates("problem_id")
    return {"problems": int(frame["problem_id"].nunique()), "samples": int((finish != PROMPT_TOO_LONG).sum()),
            "truncated": int((finish == "length").sum()),
            "prompt_too_long": int((per_problem["finish_reason"] == PROMPT_TOO_LONG).sum()),
            "budget_clamped": int(per_problem["max_new_tokens"].between(1, params.max_new_tokens - 1).sum())}


@dataclass
class _Work:
    """The problems of one run still to sample, with each prompt's length and budget of new tokens."""

    ids: list[str]
    prompts: list[str]
    lengths: dict[int, int]
    budget: dict[int, int]
    writer: _PartWriter

    def rows(self, index: int, completions: list[Completion]) -> list[dict[str, Any]]:
        return _rows(self.ids[index], self.prompts[index], completions, self.lengths[index], self.budget[index])


def _sample_missing(ids: list[str], prompts: list[str], todo: list[int], backend: Backend, params: SamplingParams,
                    writer: _PartWriter, chunk_size: int, flush_seconds: float) -> None:
    lengths = dict(zip(todo, backend.prompt_lengths([prompts[i] for i in todo])))
    room = dict(zip(todo, budgets(list(lengths.values()), params.max_new_tokens, backend.max_model_len)))
    work = _Work(ids, prompts, lengths, room, writer)
    too_long = [i for i in todo if room[i] == 0]
    if too_long:
        log.warning("%d prompts do not fit the %d-token context window, not sampled (finish_reason %s): %s",
                    len(too_long), backend.max_model_len, PROMPT_TOO_LONG,
                    ", ".join(f"{ids[i]} ({lengths[i]} tokens)" for i in too_long[:10]))
        writer.write(work.rows(i, [_not_sampled()] * params.n) for i in too_long)
    clamped = sum(0 < room[i] < params.max_new_tokens for i in todo)
    if clamped:
        log.info("%d prompts leave less than max_new_tokens=%d in the window: their budget is the room left",
                 clamped, params.max_new_tokens)
    runnable = [i for i in todo if room[i] > 0]
    if hasattr(backend, "stream"):
        _stream(backend, work, runnable, params, chunk_size, flush_seconds)
    else:
        _chunked(backend, work, runnable, params, chunk_size)


def _chunked(backend: Backend, work: _Work, runnable: list[int], params: SamplingParams, chunk_size: int) -> None:
    for start in range(0, len(runnable), chunk_size):
        chunk = runnable[start:start + chunk_size]
        outputs = backend.sample([work.prompts[i] for i in chunk], params, [work.budget[i] for i in chunk])
        work.writer.write(work.rows(i, completions) for i, completions in zip(chunk, outputs))
        log.info("sampled %d/%d problems", min(start + chunk_size, len(runnable)), len(runnable))


def _stream(backend: StreamingBackend, work: _Work, runnable: list[int], params: SamplingParams, chunk_size: int,
            flush_seconds: float) -> None:
    finished: list[list[dict[str, Any]]] = []
    last_flush, count = time.monotonic(), 0
    stream = backend.stream([work.prompts[i] for i in runnable], params, [work.budget[i] for i in runnable])
    for position, completions in stream:
        finished.append(work.rows(runnable[position], completions))
        count += 1
        if len(finished) >= chunk_size or time.monotonic() - last_flush >= flush_seconds:
            work.writer.write(finished)
            finished, last_flush = [], time.monotonic()
            log.info("sampled %d/%d problems", count, len(runnable))
    work.writer.write(finished)
    log.info("sampled %d/%d problems", count, len(runnable))


def _rows(problem_id: str, prompt: str, completions: list[Completion], prompt_tokens: int,
          budget: int) -> list[dict[str, Any]]:
    return [{"problem_id": problem_id, "sample_idx": index, "prompt": prompt, "completion": c.text,
             "token_ids": c.token_ids, "logprobs": c.logprobs, "finish_reason": c.finish_reason, "seed": c.seed,
             "num_tokens": len(c.token_ids), "prompt_tokens": prompt_tokens, "max_new_tokens": budget}
            for index, c in enumerate(completions)]


def _not_sampled() -> Completion:
    return Completion(text="", token_ids=[], logprobs=[], finish_reason=PROMPT_TOO_LONG, seed=0)


class _PartWriter:
    """Writes groups of finished problems as numbered, atomically renamed parts."""

    def __init__(self, parts: Path) -> None:
        self.parts = parts
        self.count = len(list(parts.glob("part-*.parquet")))

    def write(self, problems: Iterable[list[dict[str, Any]]]) -> None:
        records = [row for rows in problems for row in rows]
        if not records:
            return
        table = pa.Table.from_pylist(records, schema=SAMPLE_SCHEMA)
        with atomic_path(self.parts / f"part-{self.count:06d}.parquet") as tmp:
            pq.write_table(table, tmp)
        self.count += 1


def _problems_on_disk(parts: Path) -> set[str]:
    done: set[str] = set()
    for path in sorted(parts.glob("part-*.parquet")):
        done.update(pq.read_table(path, columns=["problem_id"]).column("problem_id").to_pylist())
    return done


def _gather(parts: Path, ids: list[str]) -> pa.Table:
    """All parts as one table in the problems' order, then by sample index; checks that every problem is there."""
    paths = sorted(parts.glob("part-*.parquet"))
    table = pa.concat_tables([pq.read_table(p, schema=SAMPLE_SCHEMA) for p in paths]) if paths \
        else SAMPLE_SCHEMA.empty_table()
    position = {problem_id: index for index, problem_id in enumerate(ids)}
    keys = table.select(["problem_id", "sample_idx"]).to_pandas()
    order = keys.assign(position=keys["problem_id"].map(position)).sort_values(["position", "sample_idx"],
                                                                                kind="stable")
    missing = set(ids) - set(keys["problem_id"])
    if missing:
        raise RuntimeError(f"{parts}: no samples for {len(missing)} problems, e.g. {sorted(missing)[:3]}")
    return table.take(pa.array(order.index.to_numpy()))


def _check_unique(ids: list[str], output: Path) -> None:
    duplicated = pd.Series(ids)[pd.Series(ids).duplicated()]
    if len(duplicated):
        raise DataError(f"{output}: problem ids must be unique to resume by problem; repeated: "
                        f"{sorted(set(duplicated))[:5]}")


def _digest(ids: list[str], prompts: list[str]) -> str:
    digest = hashlib.sha256()
    for problem_id, prompt in zip(ids, prompts):
        digest.update(json.dumps([problem_id, prompt]).encode())
    return digest.hexdigest()


def _directory_signature(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def reset_if_stale(parts: Path, fingerprint: dict) -> None:
    """Prepare a resumable work directory: parts made with other settings (another `fingerprint`) are discarded,
    so a resumed job never mixes them with its own. Shared by sampling and the policy gap."""
    marker = parts / "fingerprint.json"
    fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True, default=str))
    if parts.exists() and (not marker.exists() or json.loads(marker.read_text()) != fingerprint):
        log.info("discarding partial samples in %s: made with other settings", parts)
        shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    if not marker.exists():
        write_json(fingerprint, marker)


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
