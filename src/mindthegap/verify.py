"""Judge sampled solutions against gold answers and split problems into solved / failed."""

from __future__ import annotations

from collections import Counter

import pandas as pd

from mindthegap.grading import judge_batch
from mindthegap.io import DataError


def judge_samples(samples: pd.DataFrame, gold: pd.DataFrame, *, workers: int, timeout: float) -> pd.DataFrame:
    """`samples` plus extracted answer, correct and grader status; `gold` has columns id, answer."""
    answers = dict(zip(gold["id"], gold["answer"]))
    missing = sorted(set(samples["problem_id"]) - set(answers))
    if missing:
        raise DataError(f"samples refer to problems without a gold answer, e.g. {missing[:3]}")
    pairs = [(answers[pid], text) for pid, text in zip(samples["problem_id"], samples["completion"])]
    verdicts = judge_batch(pairs, workers=workers, timeout=timeout)
    judged = samples.copy()
    judged["extracted"] = [v.extracted for v in verdicts]
    judged["correct"] = [v.correct for v in verdicts]
    judged["status"] = [v.status for v in verdicts]
    # A problem without a gold answer cannot be verified: never count its samples as correct.
    no_gold = judged["problem_id"].map(lambda pid: not str(answers[pid]).strip())
    judged.loc[no_gold, ["correct", "status"]] = [False, "no_gold"]
    return judged


def split_ids(judged: pd.DataFrame, problem_ids: list[str]) -> tuple[list[str], list[str]]:
    """(solved, failed): a problem is solved when at least one of its samples is correct."""
    solved = set(judged.loc[judged["correct"], "problem_id"])
    return [p for p in problem_ids if p in solved], [p for p in problem_ids if p not in solved]


def status_counts(judged: pd.DataFrame) -> dict[str, int]:
    return dict(sorted(Counter(judged["status"]).items()))
