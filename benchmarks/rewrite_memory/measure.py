"""Peak memory of `split_self` and `rewrite` on large synthetic verified shards: whole files vs needed columns.

Writes `--rows` judged samples over `--shards` files (token-id and log-prob lists with log-normal lengths, median
450 tokens, 5 % at the 4096 cap, as long math CoT), then runs each job's reading in a fresh process and prints
its peak resident memory (VmHWM):

- before: every column of every shard into pandas (`pd.concat(read_parquet(...))`, what the scripts did);
- after: `verify.split_shards` / `rewrite.build_dataset_from_shards` (decision columns for all rows, the large
  fields only for the kept rows).

Run: `python benchmarks/rewrite_memory/measure.py --rows 100000` (writes to a temporary directory).
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

STEPS = {
    "imports and problems only (baseline)": """
import mindthegap.rewrite, mindthegap.verify
""",
    "split_self, before": """
import pandas as pd
from mindthegap.verify import split_ids
judged = pd.concat([pd.read_parquet(p) for p in PATHS], ignore_index=True)
solved, failed = split_ids(judged, IDS)
""",
    "split_self, after": """
from mindthegap.verify import split_shards
solved, failed = split_shards(PATHS, IDS)
""",
    "rewrite, before": """
import pandas as pd
from mindthegap.rewrite import build_dataset
judged = pd.concat([pd.read_parquet(p) for p in PATHS], ignore_index=True)
dataset, stats = build_dataset(PROBLEMS, "self_expert", lambda p: "prompt " + p, self_judged=judged)
""",
    "rewrite, after": """
from mindthegap.rewrite import build_dataset_from_shards
dataset, stats = build_dataset_from_shards(PROBLEMS, "self_expert", lambda p: "prompt " + p, self_paths=PATHS)
""",
}

PRELUDE = """
import json, sys
import pandas as pd
PATHS = json.loads(sys.argv[1])
PROBLEMS = pd.read_parquet(sys.argv[2])
IDS = PROBLEMS["id"].tolist()
"""
# VmHWM: the peak RSS of this process image. (ru_maxrss would also count the parent's pages at the fork.)
EPILOGUE = """
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) // 1024)
"""


def write_shards(directory: Path, rows: int, shards: int, n: int, seed: int = 0) -> tuple[list[Path], Path, int]:
    rng = np.random.default_rng(seed)
    problems = rows // n
    sigma = math.log(4096 / 450) / 1.6448536269514722
    lengths = np.clip(np.rint(np.exp(rng.normal(math.log(450), sigma, rows))), 1, 4096).astype(np.int64)
    problem_ids = np.repeat([f"p{i:07d}" for i in range(problems)], n)
    correct = rng.random(rows) < 0.4
    finish = np.where(lengths == 4096, "length", "stop")
    paths = []
    for number, part in enumerate(np.array_split(np.arange(rows), shards)):
        offsets = np.concatenate([[0], np.cumsum(lengths[part])])
        tokens = rng.integers(0, 150_000, offsets[-1])
        table = pa.table({
            "problem_id": problem_ids[part], "sample_idx": part % n,
            "prompt": [f"prompt problem {i // n}" for i in part],
            "completion": ["x" * int(3 * length) for length in lengths[part]],  # ~3 characters per token
            "token_ids": pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(tokens)),
            "logprobs": pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(-rng.random(offsets[-1]))),
            "finish_reason": finish[part], "seed": np.zeros(len(part), dtype=np.int64), "num_tokens": lengths[part],
            "extracted": ["1"] * len(part), "correct": correct[part],
            "status": np.where(correct[part], "correct", "wrong"),
        })
        path = directory / f"{number}-of-{shards}.parquet"
        pq.write_table(table, path, row_group_size=512)
        paths.append(path)
    problems_path = directory / "problems.parquet"
    pq.write_table(pa.table({"id": [f"p{i:07d}" for i in range(problems)],
                             "problem": [f"problem {i}" for i in range(problems)],
                             "solution": ["\\boxed{1}"] * problems, "answer": ["1"] * problems}), problems_path)
    return paths, problems_path, int(lengths.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--n", type=int, default=8)
    args = parser.parse_args()
    import json

    with tempfile.TemporaryDirectory() as tmp:
        paths, problems, tokens = write_shards(Path(tmp), args.rows, args.shards, args.n)
        size = sum(p.stat().st_size for p in paths) / 2**20
        print(f"{args.rows} samples in {args.shards} shards, {tokens} tokens (mean {tokens / args.rows:.0f}), "
              f"{size:.0f} MiB of parquet\n")
        print("| job | peak RSS |\n|---|---|")
        for name, code in STEPS.items():
            result = subprocess.run([sys.executable, "-c", PRELUDE + code + EPILOGUE,
                                     json.dumps([str(p) for p in paths]), str(problems)],
                                    capture_output=True, text=True, check=True)
            print(f"| {name} | {int(result.stdout.split()[-1])} MiB |")


if __name__ == "__main__":
    main()
