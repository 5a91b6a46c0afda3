"""How much of a continuous-batching engine's throughput survives when a shard is sampled chunk by chunk?

A discrete-event model of vLLM's scheduler, decode-bound (see README.md for the argument and the printed table):

- the engine runs up to `--slots` sequences at once (vLLM's `max_num_seqs`, 256 by default); every engine step
  advances each running sequence by one token and costs the same time whatever the occupancy (decode is
  memory-bound at these batch sizes), so throughput is proportional to the number of occupied slots;
- a waiting sequence takes a free slot the step it frees up (first come, first served);
- completion lengths are log-normal with median `--median` tokens, capped at `--cap` (`max_tokens`); the spread is
  set so that `--at-cap` of them reach the cap, as long chain-of-thought solutions of competition math do;
- each problem is sampled `--n` times (`SamplingParams(n=...)` fans out into n sequences).

Designs compared, on one shard of `--problems` problems:

- `chunk C`: today's loop, one blocking `LLM.generate` per chunk of C problems (C x n sequences): the next chunk
  starts only when the chunk's longest sequence is done, so the slots drain at the end of every chunk;
- `stream`: every request of the shard is in the engine at once (`LLMEngine.add_request` + `step()`), finished
  problems are persisted as they complete, flushed to disk every `--flush-problems` problems or `--flush-seconds`.

Throughput is relative to one continuous batch (all slots busy: `slots` tokens per step). "Lost at a kill" is the
expected work (generated tokens) not yet on disk when the job is killed at a uniformly random time, in minutes of the
engine at `--step-ms` per step; the shard's own length is printed beside it.

Run: `python benchmarks/chunking/simulate.py` (numpy only; a few seconds).
"""

from __future__ import annotations

import argparse
import heapq
import math
from statistics import NormalDist

import numpy as np

def completion_lengths(count: int, *, median: float, cap: int, at_cap: float, rng: np.random.Generator) -> np.ndarray:
    """Log-normal lengths with the given median, `at_cap` of them at (or cut to) `cap`."""
    z = NormalDist().inv_cdf(1 - at_cap)  # P(length >= cap) = at_cap
    sigma = math.log(cap / median) / z
    lengths = np.exp(rng.normal(math.log(median), sigma, count))
    return np.clip(np.rint(lengths), 1, cap).astype(np.int64)


def run_engine(lengths: np.ndarray, slots: int, start: int = 0) -> np.ndarray:
    """Finish step of each sequence when all are queued at step `start`, in order, on `slots` slots."""
    free_at = [start] * min(slots, len(lengths))  # the step each slot becomes free
    heapq.heapify(free_at)
    finish = np.empty(len(lengths), dtype=np.int64)
    for index, length in enumerate(lengths):
        begin = heapq.heappop(free_at)
        finish[index] = begin + int(length)
        heapq.heappush(free_at, int(finish[index]))
    return finish


def chunked(lengths: np.ndarray, n: int, chunk_problems: int, slots: int) -> tuple[np.ndarray, np.ndarray]:
    """(finish step of each sequence, step at which each problem is on disk) when chunks run one after another."""
    per_chunk = chunk_problems * n
    finish = np.empty_like(lengths)
    on_disk = np.empty(len(lengths) // n, dtype=np.int64)
    clock = 0
    for begin in range(0, len(lengths), per_chunk):
        done = run_engine(lengths[begin:begin + per_chunk], slots, start=clock)
        finish[begin:begin + per_chunk] = done
        clock = int(done.max())  # generate() returns when the chunk's longest sequence is done
        on_disk[begin // n:(begin + per_chunk) // n] = clock
    return finish, on_disk


def streamed(lengths: np.ndarray, n: int, slots: int, flush_problems: int, flush_steps: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """The same for the stream design: one engine over the shard, finished problems flushed in batches."""
    finish = run_engine(lengths, slots)
    problem_done = finish.reshape(-1, n).max(axis=1)
    order = np.argsort(problem_done, kind="stable")
    on_disk = np.empty_like(problem_done)
    buffered: list[int] = []
    last_flush = 0
    for problem in order:
        step = int(problem_done[problem])
        buffered.append(problem)
        if len(buffered) >= flush_problems or step - last_flush >= flush_steps:
            on_disk[buffered] = step
            buffered, last_flush = [], step
    on_disk[buffered] = int(problem_done.max())  # the end of the shard flushes the rest
    return finish, on_disk


def expected_loss(lengths: np.ndarray, finish: np.ndarray, on_disk: np.ndarray, n: int) -> float:
    """Mean over kill times t of the tokens generated before t whose problem is not on disk at t (steps x slots)."""
    end = int(finish.max())
    seq_on_disk = np.repeat(on_disk, n)
    begin = finish - lengths
    # A sequence's tokens made by t count as lost while t < on_disk; integrate over t in [0, end) exactly:
    # lost(t) = min(t, finish) - begin for begin <= t < seq_on_disk.
    b, f, d = begin.astype(float), finish.astype(float), seq_on_disk.astype(float)
    ramp = np.clip(np.minimum(d, f) - b, 0, None) ** 2 / 2  # while generating
    plateau = np.clip(d - f, 0, None) * (f - b)  # finished, waiting to be flushed
    return float((ramp + plateau).sum() / end)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", type=int, default=6250, help="problems per shard (50k / 8 shards)")
    parser.add_argument("--n", type=int, default=8, help="samples per problem")
    parser.add_argument("--slots", type=int, default=256, help="concurrent sequences (vLLM max_num_seqs)")
    parser.add_argument("--median", type=float, default=450)
    parser.add_argument("--cap", type=int, default=4096)
    parser.add_argument("--at-cap", type=float, default=0.05)
    parser.add_argument("--chunks", type=int, nargs="+", default=[64, 256, 1024, 2048])
    parser.add_argument("--flush-problems", type=int, default=64)
    parser.add_argument("--flush-seconds", type=float, default=60)
    parser.add_argument("--step-ms", type=float, default=30.0, help="one decode step of 256 sequences (7B, one GPU)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    to_minutes = args.step_ms / 1000 / 60
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for repeat in range(args.repeats):
        rng = np.random.default_rng(repeat)
        lengths = completion_lengths(args.problems * args.n, median=args.median, cap=args.cap, at_cap=args.at_cap,
                                     rng=rng)
        ideal = lengths.sum() / args.slots  # steps of one continuous batch, every slot busy
        designs = {f"chunk {c} problems ({c * args.n} sequences)": chunked(lengths, args.n, c, args.slots)
                   for c in args.chunks}
        flush_steps = int(args.flush_seconds * 1000 / args.step_ms)
        designs[f"stream, flush every {args.flush_problems} problems / {args.flush_seconds:g} s"] = streamed(
            lengths, args.n, args.slots, args.flush_problems, flush_steps)
        for name, (finish, on_disk) in designs.items():
            span = int(finish.max())
            lost = expected_loss(lengths, finish, on_disk, args.n) / args.slots  # in steps of a full engine
            rows.setdefault(name, []).append((ideal / span, lost * to_minutes, span * to_minutes))
        if repeat == 0:
            print(f"lengths: median {np.median(lengths):.0f}, mean {lengths.mean():.0f}, "
                  f"at cap {np.mean(lengths == args.cap):.1%}, p99 {np.percentile(lengths, 99):.0f} tokens")
    print(f"{args.problems} problems x n={args.n} = {args.problems * args.n} sequences, {args.slots} slots, "
          f"{args.step_ms:g} ms per step, mean of {args.repeats} draws\n")
    print("| design | throughput vs one continuous batch | shard wall time | work lost at a random kill |")
    print("|---|---|---|---|")
    for name, values in rows.items():
        throughput, lost, span = np.mean(values, axis=0)
        print(f"| {name} | {throughput:.1%} | {span:.0f} min | {lost:.1f} min |")


if __name__ == "__main__":
    main()
