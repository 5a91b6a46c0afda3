"""Judge sampled solutions against gold answers and split problems into solved / failed.

A sample is *usable* as a training row only when it is correct and finished by itself (finish reason "stop"). A
sample cut at the length limit ("length") may hold a correct answer, and evaluation counts it, but it is not a
complete response: the model never chose to stop there, its tokens end without the end-of-sequence token that
training appends, and the behaviour log-probs of that ending do not exist. So the split calls a problem solved only
when it has a usable sample. The split only routes the cascade (solved: a self row; failed: guided re-solving), and
a problem whose sole correct samples were cut would otherwise get neither a self row nor a guided attempt.

Shards of judged samples are read column by column (`JudgedShards`): the few small columns that decide the
split and the cascade for every row, and the large ones (token ids, log-probs, texts) only for the rows kept.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mindthegap.grading import judge_batch
from mindthegap.io import DataError
from mindthegap.sampling import PROMPT_TOO_LONG

# What the split and the cascade's choice read for every sample.
DECISION_COLUMNS = ["problem_id", "sample_idx", "finish_reason", "correct", "status"]
READ_BATCH_ROWS = 512  # rows decoded at a time when fetching the large columns of kept samples


def cut_at_stop_strings(text: str, stop_strings: tuple[str, ...] | list[str]) -> str:
    """The text as the harness graded it: cut at the first stop string it holds, then stripped."""
    for stop in stop_strings:
        text = text.split(stop, 1)[0]
    return text.strip()


def judge_samples(samples: pd.DataFrame, gold: pd.DataFrame, *, workers: int, timeout: float,
                  stop_strings: tuple[str, ...] | list[str] = ()) -> pd.DataFrame:
    """`samples` plus extracted answer, correct and grader status; `gold` has columns id, answer. With
    `stop_strings`, each completion is judged as cut at the first of them (the evaluation harness's stop words)."""
    answers = dict(zip(gold["id"], gold["answer"]))
    missing = sorted(set(samples["problem_id"]) - set(answers))
    if missing:
        raise DataError(f"samples refer to problems without a gold answer, e.g. {missing[:3]}")
    pairs = [(answers[pid], cut_at_stop_strings(text, stop_strings))
             for pid, text in zip(samples["problem_id"], samples["completion"])]
    verdicts = judge_batch(pairs, workers=workers, timeout=timeout)
    judged = samples.copy()
    judged["extracted"] = [v.extracted for v in verdicts]
    judged["correct"] = [v.correct for v in verdicts]
    judged["status"] = [v.status for v in verdicts]
    # A problem without a gold answer cannot be verified: never count its samples as correct.
    no_gold = judged["problem_id"].map(lambda pid: not str(answers[pid]).strip())
    judged.loc[no_gold, ["correct", "status"]] = [False, "no_gold"]
    # A prompt that did not fit the context window was never sampled: failed, and said so.
    too_long = judged["finish_reason"] == PROMPT_TOO_LONG
    judged.loc[too_long, ["correct", "status"]] = [False, PROMPT_TOO_LONG]
    return judged


def usable(judged: pd.DataFrame) -> pd.Series:
    """Samples that may become training rows: correct and finished by a stop token, not cut at the limit."""
    return judged["correct"].astype(bool) & (judged["finish_reason"] == "stop")


def split_ids(judged: pd.DataFrame, problem_ids: list[str]) -> tuple[list[str], list[str]]:
    """(solved, failed): a problem is solved when at least one of its samples is usable (see the module doc)."""
    solved = set(judged.loc[usable(judged), "problem_id"])
    return [p for p in problem_ids if p in solved], [p for p in problem_ids if p not in solved]


def split_shards(paths: Iterable[str | Path], problem_ids: list[str]) -> tuple[list[str], list[str]]:
    """`split_ids` over verified shard files, reading only the three columns it needs."""
    return split_ids(JudgedShards(paths).columns(["problem_id", "correct", "finish_reason"]), problem_ids)


def status_counts(judged: pd.DataFrame) -> dict[str, int]:
    return dict(sorted(Counter(judged["status"]).items()))


class JudgedShards:
    """The verified shards of one phase, read only as far as needed.

    `columns()` reads some columns of every row (row labels: the position over all shards, in order);
    `rows()` reads other columns for chosen rows only, a batch of rows at a time, so memory holds the kept
    rows, not the shards.
    """

    def __init__(self, paths: Iterable[str | Path] | str | Path) -> None:
        self.paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
        self.offsets = [0]
        for path in self.paths:
            self.offsets.append(self.offsets[-1] + pq.ParquetFile(path).metadata.num_rows)

    def columns(self, names: list[str]) -> pd.DataFrame:
        frames = []
        for path in self.paths:
            self._check_columns(path, names)
            frames.append(pq.read_table(path, columns=names).to_pandas())
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=names)

    def rows(self, labels: Iterable[int], names: list[str]) -> dict[int, dict[str, Any]]:
        wanted = sorted(set(int(label) for label in labels))
        found: dict[int, dict[str, Any]] = {}
        for number, path in enumerate(self.paths):
            begin, end = self.offsets[number], self.offsets[number + 1]
            local = [label - begin for label in wanted if begin <= label < end]
            if local:
                self._check_columns(path, names)
                found.update({label + begin: row for label, row in _read_rows(path, local, names).items()})
        return found

    @staticmethod
    def _check_columns(path: Path, names: list[str]) -> None:
        missing = sorted(set(names) - set(pq.ParquetFile(path).schema_arrow.names))
        if missing:
            raise DataError(f"{path}: no column(s) {missing}; is it a verified samples file?")


def _read_rows(path: Path, positions: list[int], names: list[str]) -> dict[int, dict[str, Any]]:
    """{position: {column: value}} for the given sorted row positions of one file, a batch of rows at a time."""
    rows: dict[int, dict[str, Any]] = {}
    start = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=READ_BATCH_ROWS, columns=names, use_threads=False):
        end = start + batch.num_rows
        local = positions[bisect_left(positions, start):bisect_left(positions, end)]
        if local:
            # Through pandas: list cells become numpy arrays (8 bytes a token), not lists of Python numbers.
            kept = batch.take(pa.array([p - start for p in local])).to_pandas()
            rows.update(zip(local, kept.to_dict("records")))
        start = end
    return rows
