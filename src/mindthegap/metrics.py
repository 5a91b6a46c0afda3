"""Accuracy metrics over n samples per problem: avg@n (the paper's number), unbiased pass@k, maj@k, bootstrap CI."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence


def avg_at_n(correct: Sequence[Sequence[bool]]) -> float:
    """Mean accuracy over all samples of all problems (not sample 0 only: the upstream harness's trap)."""
    per_problem = [sum(c) / len(c) for c in correct if len(c)]
    return sum(per_problem) / len(per_problem) if per_problem else float("nan")


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
