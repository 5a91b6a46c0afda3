"""The rewrite cascade, per problem: self (own correct sample) -> guided (correct re-solution with the expert
solution as hint; the hint is not in the training prompt) -> expert (the demonstration itself).

Pure functions on data frames; the choice among several usable samples (correct, and finished by a stop token:
a sample cut at the length limit is never a training row, see `mindthegap.verify`) is seeded per problem and
recorded.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mindthegap.sampling import PROMPT_TOO_LONG
from mindthegap.verify import DECISION_COLUMNS, JudgedShards, usable

SOURCES = ("self", "guided", "expert")
# Which stages of the cascade each dataset variant uses (the ablations drop one).
VARIANTS: dict[str, tuple[str, ...]] = {
    "expert": ("expert",),
    "rewritten": ("self", "guided", "expert"),
    "self_expert": ("self", "expert"),
    "guided_expert": ("guided", "expert"),
}
# What a kept sample contributes beyond the decision columns; read only for the kept rows.
SAMPLE_FIELDS = ["prompt", "completion", "token_ids", "logprobs"]
Fetch = Callable[[str, list[Any]], dict[Any, dict[str, Any]]]
DATASET_COLUMNS = ["id", "prompt", "completion", "completion_token_ids", "behaviour_logprobs", "source",
                   "sample_idx", "sampled_with"]


def _pick(candidates: pd.DataFrame, seed: int, problem_id: str) -> Any:
    """The row label of one usable sample, chosen at random but reproducibly for (seed, problem)."""
    rng = random.Random(int.from_bytes(hashlib.sha256(f"{seed}:{problem_id}".encode()).digest()[:8], "little"))
    ordered = candidates.sort_values("sample_idx", kind="stable").index
    return ordered[rng.randrange(len(ordered))]


def _usable_by_problem(judged: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    if judged is None or judged.empty:
        return {}
    kept = judged[usable(judged)]
    return {pid: group for pid, group in kept.groupby("problem_id", sort=False)}


def build_dataset(problems: pd.DataFrame, variant: str, train_prompt: Callable[[str], str], *,
                  self_judged: pd.DataFrame | None = None, guided_judged: pd.DataFrame | None = None,
                  seed: int = 0, fetch: Fetch | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One training row per problem, labelled with its source; and the per-source statistics.

    The judged frames need only the decision columns (`verify.DECISION_COLUMNS`) when `fetch(source, labels)`
    returns the sample fields (`SAMPLE_FIELDS`) of the kept rows by row label (see `verify.JudgedShards`);
    without `fetch` they are taken from the frames. Only usable samples (correct and not cut at the length
    limit) are kept.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown dataset variant {variant!r}; valid: {', '.join(VARIANTS)}")
    stages = VARIANTS[variant]
    judged = {"self": self_judged if "self" in stages else None,
              "guided": guided_judged if "guided" in stages else None}
    for source, frame in judged.items():
        if frame is not None and not frame.index.is_unique:
            raise ValueError(f"{source} samples: row labels must be unique (they name the kept rows)")
    pools = {source: _usable_by_problem(frame) for source, frame in judged.items()}
    picks: dict[str, tuple[str, Any]] = {}
    for problem_id in problems["id"]:
        source = next((s for s in ("self", "guided") if problem_id in pools[s]), None)
        if source:
            picks[problem_id] = (source, _pick(pools[source][problem_id], seed, problem_id))
    fetch = fetch or _fetch_from_frames(judged)
    fields = {source: fetch(source, [label for s, label in picks.values() if s == source])
              for source in ("self", "guided")}
    rows = []
    for problem in problems.to_dict("records"):
        prompt = train_prompt(problem["problem"])
        if problem["id"] in picks:
            source, label = picks[problem["id"]]
            sample = {"sample_idx": judged[source].loc[label, "sample_idx"], **fields[source][label]}
            rows.append(_sampled_row(problem["id"], prompt, source, sample))
        else:
            rows.append(_expert_row(problem, prompt))
    dataset = pd.DataFrame(rows, columns=DATASET_COLUMNS)
    return dataset, dataset_stats(dataset, problems, self_judged, guided_judged, variant)


def build_dataset_from_shards(problems: pd.DataFrame, variant: str, train_prompt: Callable[[str], str], *,
                              self_paths: list[str] | None = None, guided_paths: list[str] | None = None,
                              seed: int = 0) -> tuple[pd.DataFrame, dict[str, Any]]:
    """`build_dataset` over verified shard files: every sample's decision columns, but the large fields (texts,
    token ids, log-probs) only of the kept samples, so memory follows the dataset, not the samples."""
    shards = {phase: JudgedShards(paths) for phase, paths in (("self", self_paths), ("guided", guided_paths))
              if paths}
    decisions = {phase: store.columns(DECISION_COLUMNS) for phase, store in shards.items()}

    def fetch(phase: str, labels: list[Any]) -> dict[Any, dict[str, Any]]:
        return shards[phase].rows(labels, SAMPLE_FIELDS) if labels else {}

    return build_dataset(problems, variant, train_prompt, self_judged=decisions.get("self"),
                         guided_judged=decisions.get("guided"), seed=seed, fetch=fetch)


def _fetch_from_frames(judged: dict[str, pd.DataFrame | None]) -> Fetch:
    def fetch(source: str, labels: list[Any]) -> dict[Any, dict[str, Any]]:
        frame = judged[source]
        return {label: frame.loc[label, SAMPLE_FIELDS].to_dict() for label in labels}

    return fetch


def _expert_row(problem: dict[str, Any], prompt: str) -> dict[str, Any]:
    # The expert policy is unknown: no behaviour log-probs; the IS loss substitutes its configured weight.
    return {"id": problem["id"], "prompt": prompt, "completion": problem["solution"], "completion_token_ids": None,
            "behaviour_logprobs": None, "source": "expert", "sample_idx": -1, "sampled_with": None}


def _sampled_row(problem_id: str, prompt: str, source: str, sample: dict[str, Any]) -> dict[str, Any]:
    if source == "self" and sample["prompt"] != prompt:
        raise ValueError(f"problem {problem_id}: the self sample was drawn from another prompt than the training "
                         "prompt, so its log-probs are not the behaviour policy of training")
    return {"id": problem_id, "prompt": prompt, "completion": sample["completion"],
            "completion_token_ids": np.asarray(sample["token_ids"], dtype=np.int64),
            "behaviour_logprobs": np.asarray(sample["logprobs"], dtype=np.float64),
            "source": source, "sample_idx": int(sample["sample_idx"]), "sampled_with": sample["prompt"]}


def dataset_stats(dataset: pd.DataFrame, problems: pd.DataFrame, self_judged: pd.DataFrame | None,
                  guided_judged: pd.DataFrame | None, variant: str) -> dict[str, Any]:
    counts = Counter(dataset["source"])
    stats: dict[str, Any] = {
        "variant": variant,
        "problems": len(problems),
        "rows": len(dataset),
        "sources": {source: counts.get(source, 0) for source in SOURCES},
        "problems_without_gold": int((problems["answer"].astype(str).str.strip() == "").sum()),
    }
    for name, judged in (("self", self_judged), ("guided", guided_judged)):
        if judged is not None and not judged.empty:
            stats[f"{name}_samples"] = phase_stats(judged)
    return stats


def phase_stats(judged: pd.DataFrame) -> dict[str, Any]:
    """Counts of one phase's judged samples; the cut ones (finish reason "length") are never training rows."""
    finish = judged["finish_reason"]
    correct = judged["correct"].astype(bool)
    sampled = finish != PROMPT_TOO_LONG
    return {
        "samples": int(sampled.sum()),
        "accuracy": float(correct[sampled].mean()) if sampled.any() else 0.0,
        "grader_status": dict(sorted(Counter(judged["status"]).items())),
        "truncated": int((finish == "length").sum()),
        "correct_but_truncated": int((correct & (finish == "length")).sum()),
        "usable": int(usable(judged).sum()),
        "prompt_too_long_problems": int(judged.loc[~sampled, "problem_id"].nunique()),
    }
