"""Benchmark evaluation by work, not by benchmark: one job samples its share of every benchmark with one model load.

Loading a 7B model takes about as long as sampling a benchmark's share, so a job per (benchmark, shard) would spend
as much GPU time loading as generating. Shard `i` of `n` takes every n-th problem of each benchmark (the same share
of each, the long-answer ones included), samples them as one resumable stream, and writes per-benchmark files, so
judging and metrics stay per benchmark.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mindthegap.generation import Backend, SamplingParams
from mindthegap.io import read_parquet, write_parquet
from mindthegap.sampling import sample_to_parquet, shard

log = logging.getLogger(__name__)


def union_shard(benchmarks: dict[str, pd.DataFrame], index: int, count: int) -> pd.DataFrame:
    """Shard `index` of `count` of all benchmarks together, with a `benchmark` column.

    Each benchmark is dealt round-robin, so every shard holds the same share of it; its rows are then spread
    evenly through the shard (sorted by relative position), so each chunk of the stream mixes benchmarks.
    """
    parts = []
    for name, frame in benchmarks.items():
        part = shard(frame, index, count)
        parts.append(part.assign(benchmark=name, _position=(np.arange(len(part)) + 0.5) / max(len(part), 1)))
    union = pd.concat(parts, ignore_index=True)
    repeated = union.loc[union["id"].duplicated(keep=False)]
    if len(repeated):
        first = repeated["id"].iloc[0]
        where = sorted(repeated.loc[repeated["id"] == first, "benchmark"])
        raise ValueError(f"problem id {first!r} appears in several benchmarks ({', '.join(where)}): "
                         "ids must be unique across the benchmarks evaluated together")
    return union.sort_values("_position", kind="stable").drop(columns="_position").reset_index(drop=True)


def sample_benchmarks(benchmarks: dict[str, pd.DataFrame], index: int, count: int,
                      render: Callable[[dict[str, Any]], str], backend_factory: Callable[[], Backend],
                      params: SamplingParams, outputs: dict[str, str | Path], work: str | Path,
                      chunk_size: int = 64, *, resume_key: dict[str, Any] | None = None) -> dict:
    """Sample shard `index` of `count` of every benchmark; write each benchmark's samples to `outputs[name]`.

    The union is sampled into `work` (resumable from its parts, `<work>.parts/`, under `resume_key`: see
    `sampling.resume_key`), then split by benchmark; the backend is created at most once, and not at all when
    every problem is already sampled.
    """
    if set(outputs) != set(benchmarks):
        raise ValueError(f"outputs name benchmarks {sorted(outputs)}, but the benchmarks are {sorted(benchmarks)}")
    union = union_shard(benchmarks, index, count)
    log.info("shard %d/%d: %s", index + 1, count,
             ", ".join(f"{name} {n}" for name, n in union["benchmark"].value_counts(sort=False).items()))
    summary = sample_to_parquet(union, render, backend_factory, params, work, chunk_size=chunk_size,
                                resume_key=resume_key)
    samples = read_parquet(work)
    samples.insert(0, "benchmark", samples["problem_id"].map(dict(zip(union["id"], union["benchmark"]))))
    for name, path in outputs.items():
        write_parquet(samples[samples["benchmark"] == name].reset_index(drop=True), path)
    # Gone only once every benchmark's file is written: a job killed before that samples its shard again.
    Path(work).unlink()
    return {**summary, "per_benchmark": union["benchmark"].value_counts(sort=False).to_dict()}
