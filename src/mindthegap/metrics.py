"""Accuracy metrics over n samples per problem: the exact avg@n, the Qwen2.5-Math harness's `mean_acc` (the number
in the paper's table), unbiased pass@k, maj@k, bootstrap CI."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence

import numpy as np


def avg_at_n(correct: Sequence[Sequence[bool]]) -> float:
    """Mean accuracy over all samples of all problems (not sample 0 only: the upstream harness's trap)."""
    per_problem = [sum(c) / len(c) for c in correct if len(c)]
    return sum(per_problem) / len(per_problem) if per_problem else float("nan")


def harness_mean_acc(correct: Sequence[Sequence[bool]]) -> tuple[float, list[float]]:
    """The harness's `mean_acc` and `all_acc`, in %, as the paper's fork computes them (NKU-HLT/Off-Policy-SFT,
    math_evaluation/evaluate.py): the problems x n matrix of verdicts (a shorter row is padded with its last
    verdict, as there); each sample column's accuracy x100 rounded to 0.1; `mean_acc` = the mean of those n values.

    The rounding is NumPy's, as in the harness (`np.round(col_means * 100, decimals=1)`): round half to even of
    the float x*10, then /10; the mean is NumPy's too, so the result is bit-identical to the harness's. (For
    column accuracies k/N with N < 700, Python's round gives the same values; the half-to-even ties are real,
    e.g. Minerva's 17/272 = 6.25 % -> 6.2.) mean_acc differs from the exact avg@n by at most 0.05 points."""
    rows = [list(map(bool, row)) for row in correct if len(row)]
    if not rows:
        return float("nan"), []
    width = max(len(row) for row in rows)
    matrix = np.array([row + [row[-1]] * (width - len(row)) for row in rows], dtype=bool)
    all_acc = np.round(matrix.mean(axis=0) * 100, decimals=1)
    return float(np.mean(all_acc)), [float(value) for value in all_acc]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021) for one problem with c correct of n samples."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


def mean_pass_at_k(correct: Sequence[Sequence[bool]], k: int) -> float:
    return sum(pass_at_k(len(c), sum(c), k) for c in correct) / len(correct) if correct else float("nan")


def maj_at_k(answers: Sequence[Sequence[str | None]], correct: Sequence[Sequence[bool]], k: int) -> float:
    """Majority vote over the first k extracted answers; ties go to the earliest answer."""
    hits = 0
    for problem_answers, problem_correct in zip(answers, correct):
        votes = Counter(a for a in problem_answers[:k] if a)
        if votes:
            winner = max(votes, key=lambda a: (votes[a], -problem_answers.index(a)))
            hits += bool(problem_correct[problem_answers.index(winner)])
    return hits / len(answers) if answers else float("nan")


def bootstrap_ci(correct: Sequence[Sequence[bool]], *, resamples: int = 1000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile CI of avg@n, resampling problems."""
    per_problem = [sum(c) / len(c) for c in correct if len(c)]
    if not per_problem:
        return float("nan"), float("nan")
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(per_problem, k=len(per_problem))) / len(per_problem) for _ in range(resamples))
    low = means[int((1 - level) / 2 * resamples)]
    high = means[min(resamples - 1, int((1 + level) / 2 * resamples))]
    return low, high


def pass_at_k_curve(correct: Sequence[Sequence[bool]]) -> list[float]:
    """Mean unbiased pass@k for k = 1..n (n = the fewest samples of any problem): one point per k of a curve."""
    n = min((len(c) for c in correct), default=0)
    return [mean_pass_at_k(correct, k) for k in range(1, n + 1)]


def maj_at_k_curve(answers: Sequence[Sequence[str | None]], correct: Sequence[Sequence[bool]]) -> list[float]:
    """maj@k for k = 1..n: the majority vote over each problem's first k answers (maj@1 is sample 0's accuracy)."""
    n = min((len(c) for c in correct), default=0)
    return [maj_at_k(answers, correct, k) for k in range(1, n + 1)]
