"""The rewrite cascade, per problem: self (own correct sample) -> guided (correct re-solution with the expert
solution as hint; the hint is not in the training prompt) -> expert (the demonstration itself).

Pure functions on data frames; the choice among several correct samples is seeded per problem and recorded.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import pandas as pd

SOURCES = ("self", "guided", "expert")
# Which stages of the cascade each dataset variant uses (the ablations drop one).
VARIANTS: dict[str, tuple[str, ...]] = {
    "expert": ("expert",),
    "rewritten": ("self", "guided", "expert"),
    "self_expert": ("self", "expert"),
    "guided_expert": ("guided", "expert"),
}
DATASET_COLUMNS = ["id", "prompt", "completion", "completion_token_ids", "behaviour_logprobs", "source",
                   "sample_idx", "sampled_with"]


def _pick(candidates: pd.DataFrame, seed: int, problem_id: str) -> dict[str, Any]:
    """One correct sample, chosen at random but reproducibly for (seed, problem)."""
    rng = random.Random(int.from_bytes(hashlib.sha256(f"{seed}:{problem_id}".encode()).digest()[:8], "little"))
    ordered = candidates.sort_values("sample_idx").to_dict("records")
    return ordered[rng.randrange(len(ordered))]


def _correct_by_problem(judged: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    if judged is None or judged.empty:
        return {}
    correct = judged[judged["correct"]]
    return {pid: group for pid, group in correct.groupby("problem_id", sort=False)}


def build_dataset(problems: pd.DataFrame, variant: str, train_prompt: Callable[[str], str], *,
                  self_judged: pd.DataFrame | None = None, guided_judged: pd.DataFrame | None = None,
                  seed: int = 0) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One training row per problem, labelled with its source; and the per-source statistics."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown dataset variant {variant!r}; valid: {', '.join(VARIANTS)}")
    stages = VARIANTS[variant]
    pools = {"self": _correct_by_problem(self_judged if "self" in stages else None),
             "guided": _correct_by_problem(guided_judged if "guided" in stages else None)}
    rows = []
    for problem in problems.to_dict("records"):
        prompt = train_prompt(problem["problem"])
        row = _expert_row(problem, prompt)
        for source in ("self", "guided"):
            if problem["id"] in pools[source]:
                row = _sampled_row(problem["id"], prompt, source, _pick(pools[source][problem["id"]], seed,
                                                                        problem["id"]))
                break
        rows.append(row)
    dataset = pd.DataFrame(rows, columns=DATASET_COLUMNS)
    return dataset, dataset_stats(dataset, problems, self_judged, guided_judged, variant)


def _expert_row(problem: dict[str, Any], prompt: str) -> dict[str, Any]:
    # The expert policy is unknown: no behaviour log-probs; the IS loss substitutes its configured weight.
    return {"id": problem["id"], "prompt": prompt, "completion": problem["solution"], "completion_token_ids": None,
            "behaviour_logprobs": None, "source": "expert", "sample_idx": -1, "sampled_with": None}


def _sampled_row(problem_id: str, prompt: str, source: str, sample: dict[str, Any]) -> dict[str, Any]:
    if source == "self" and sample["prompt"] != prompt:
        raise ValueError(f"problem {problem_id}: the self sample was drawn from another prompt than the training "
                         "prompt, so its log-probs are not the behaviour policy of training")
    return {"id": problem_id, "prompt": prompt, "completion": sample["completion"],
            "completion_token_ids": list(sample["token_ids"]), "behaviour_logprobs": list(sample["logprobs"]),
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
            stats[f"{name}_samples"] = {
                "samples": len(judged),
                "accuracy": float(judged["correct"].mean()),
                "grader_status": dict(sorted(Counter(judged["status"]).items())),
                "truncated": int((judged["finish_reason"] == "length").sum()),
            }
    return stats
