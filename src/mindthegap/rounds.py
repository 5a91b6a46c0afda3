"""Seeds and rounds of iterative rewriting: which runs the workflow plans, and how a run is named in paths.

Round 1 is the paper's offline rewriting: the base model samples, the rewritten data trains every planned method.
Round r >= 2 samples with the round r-1 checkpoint of one chosen method (`rewrite.round_policy`, its first training
seed), rewrites, and trains the methods of `rewrite.round_methods` again, from the base model or from their own
round r-1 checkpoint (`rewrite.round_init`). Every trained method trains once per seed of `training.seeds`.
A run (one evaluated model) is "base" or `round{r}/{method}/seed{s}`: the base model has no round and no seed, so it
is evaluated once.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

BASE = "base"
RUN_PATTERN = re.compile(r"round(?P<round>\d+)/(?P<method>[A-Za-z0-9_]+)/seed(?P<seed>\d+)")


class Run(NamedTuple):
    """One evaluated model: round 0 and no seed for the base model."""

    round: int
    method: str
    seed: int | None


def run_id(round_: int | str, method: str, seed: int | str | None) -> str:
    """The path segment(s) of a run: `base`, or `round{r}/{method}/seed{s}`."""
    return BASE if method == BASE else f"round{round_}/{method}/seed{seed}"


def parse_run(run: str) -> Run:
    """The inverse of run_id; a clear error for anything else."""
    if run == BASE:
        return Run(0, BASE, None)
    match = RUN_PATTERN.fullmatch(run)
    if not match:
        raise ValueError(f"run {run!r}: expected 'base' or 'round<r>/<method>/seed<s>'")
    return Run(int(match["round"]), match["method"], int(match["seed"]))


def planned_methods(config: dict[str, Any]) -> list[str]:
    """The methods of a run, in config order: the paper's grid, plus our extensions when `extensions: true`."""
    return [m for m, spec in config["methods"].items()
            if config.get("extensions", False) or not spec.get("extension", False)]


def trained_methods(config: dict[str, Any]) -> list[str]:
    """The planned methods that train (every one but the base model)."""
    return [m for m in planned_methods(config) if "data" in config["methods"][m]]


def rewritten_methods(methods: dict[str, dict[str, Any]], trained: list[str]) -> list[str]:
    """The trained methods whose data is rewritten by our own sampling (not the expert data, not the authors'
    released data): the default of rounds >= 2, since the others would see the same data again."""
    return [method for method in trained if methods[method]["data"] not in ("expert", "released")]


def methods_by_round(rewrite: dict[str, Any], methods: dict[str, dict[str, Any]], trained: list[str]
                     ) -> dict[int, list[str]]:
    """round -> the methods trained in it (config order). Round 1: every trained method; later rounds:
    `rewrite.round_methods`, or the rewritten-data methods when it is empty. Raises ValueError naming the key
    when a setting cannot be planned."""
    later = list(rewrite["round_methods"]) or rewritten_methods(methods, trained)
    unknown = [method for method in later if method not in trained]
    if unknown:
        raise ValueError(f"rewrite.round_methods: {unknown} are not trained methods of this run; valid: {trained}")
    plan = {1: list(trained)}
    plan.update({round_: [m for m in trained if m in later] for round_ in range(2, rewrite["rounds"] + 1)})
    if rewrite["rounds"] > 1:
        policy = rewrite["round_policy"]
        for round_ in range(2, rewrite["rounds"] + 1):
            if policy not in plan[round_ - 1]:
                raise ValueError(f"rewrite.round_policy: {policy!r} is not trained in round {round_ - 1}, so it "
                                 f"cannot sample round {round_}; trained there: {plan[round_ - 1]}")
    return plan


def policy_run(round_: int, rewrite: dict[str, Any], seeds: list[int]) -> Run | None:
    """The model that samples round r: None (the base model) for round 1, else the round r-1 checkpoint of
    `rewrite.round_policy` with the first training seed (one sampling per round, whatever the seeds)."""
    return None if round_ == 1 else Run(round_ - 1, rewrite["round_policy"], seeds[0])


def init_run(run: Run, rewrite: dict[str, Any]) -> Run | None:
    """What a run's training starts from: None (the base model) in round 1 or with `round_init: base`; else the
    same method and seed of the previous round."""
    if run.round == 1 or rewrite["round_init"] == "base":
        return None
    return Run(run.round - 1, run.method, run.seed)
