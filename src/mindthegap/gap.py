"""The policy-gap analysis: how far the training data sit from the model's own policy (the paper's release
computes it in `get_probability.py`; here it is a stage of the workflow).

For every row of a rewritten dataset, under the base model and on the TRAINING prompt (the row's `prompt`), the
kept response and the expert solution of the same problem are scored teacher-forced (`Backend.score`), token by
token, exactly as training tokenises them (`training.encode_row`: sampled rows keep their stored ids and end with
EOS; expert solutions are tokenised and get EOS). Per response: token count, joint log-prob, mean token log-prob and
perplexity = exp(-mean). The paper's claim is that self and guided responses sit far closer to the model's policy
than the expert's (a higher mean token log-prob), so the importance weights that correct for the gap vary less.

The token-level log-ratio log p_base(y_t | training prompt) - log pi_b(y_t), over the tokens whose behaviour
log-prob was stored at sampling, is that gap for sampled rows: ~0 for a self row (sampled on the training prompt
at temperature 1), and the hint's effect for a guided row (sampled on the hint prompt). Its spread is the variance
of the IS log-weights at the start of training.

A response longer than the context window is scored on its first tokens that fit (training keeps the start too);
`kept_truncated` / `expert_truncated` say where. Scoring is resumable: finished chunks of rows are kept in a work
directory under a fingerprint of the data and the scoring setup (as `mindthegap.sampling` keeps its parts).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mindthegap.generation import Backend
from mindthegap.io import DataError, atomic_path
from mindthegap.sampling import reset_if_stale
from mindthegap.training import encode_row

log = logging.getLogger(__name__)

SOURCES = ("self", "guided", "expert")
METRICS = ("logprob_mean", "logprob_sum", "perplexity", "tokens")
_FLOAT, _INT = pa.float64(), pa.int64()
ROW_SCHEMA = pa.schema([
    ("id", pa.string()), ("source", pa.string()),
    *((f"{prefix}_{name}", _INT if name == "tokens" else _FLOAT) for prefix in ("kept", "expert")
      for name in ("tokens", "logprob_sum", "logprob_mean", "perplexity")),
    ("logratio", pa.list_(_FLOAT)), ("logratio_mean", _FLOAT), ("logratio_var", _FLOAT),
    ("kept_truncated", pa.bool_()), ("expert_truncated", pa.bool_()),
])
ROW_COLUMNS = ROW_SCHEMA.names  # the contract of rows.parquet (README "Policy gap")
ROW_QUANTILES = {"q10": 0.10, "q25": 0.25, "q75": 0.75, "q90": 0.90}
TOKEN_QUANTILES = {"q05": 0.05, "q25": 0.25, "median": 0.50, "q75": 0.75, "q95": 0.95}


# --- what is scored ------------------------------------------------------------------------------------------


def training_completion(row: dict[str, Any], tokenizer) -> tuple[list[int], list[float], list[int]]:
    """(completion ids, behaviour log-probs, known mask) of one dataset row, as training encodes it: the row's
    response after `encode_row`, untruncated. Expert rows have no known behaviour log-prob."""
    encoded = encode_row(row, tokenizer, None)
    start = sum(label == -100 for label in encoded["labels"])
    return (encoded["input_ids"][start:], encoded["behaviour_logprobs"][start:], encoded["behaviour_mask"][start:])


def expert_completion(prompt: str, solution: str, tokenizer) -> list[int]:
    """The expert solution's ids as training encodes an expert row (its tokens, then EOS)."""
    row = {"prompt": prompt, "completion": solution, "completion_token_ids": None, "behaviour_logprobs": None,
           "source": "expert"}
    return training_completion(row, tokenizer)[0]


def with_solutions(dataset: pd.DataFrame, problems: pd.DataFrame, where: str = "the rewritten dataset") -> \
        pd.DataFrame:
    """The dataset with each row's expert `solution` (from the problems file, by id); an id without a problem is
    an error that names it."""
    solutions = problems.drop_duplicates("id").set_index("id")["solution"]
    missing = sorted(set(dataset["id"]) - set(solutions.index))
    if missing:
        raise DataError(f"{where}: {len(missing)} rows have no problem in the problems file, e.g. {missing[:5]}")
    unknown = sorted(set(dataset["source"]) - set(SOURCES))
    if unknown:
        raise DataError(f"{where}: unknown source(s) {unknown}; valid: {', '.join(SOURCES)}")
    return dataset.assign(solution=dataset["id"].map(solutions).to_numpy())


# --- per-row numbers -----------------------------------------------------------------------------------------


def response_metrics(logprobs: list[float]) -> dict[str, float]:
    """Token count, joint log-prob, mean token log-prob and perplexity (exp of minus the mean) of one response;
    NaN for an empty one."""
    tokens = len(logprobs)
    total = float(np.sum(logprobs)) if tokens else math.nan
    mean = total / tokens if tokens else math.nan
    return {"tokens": tokens, "logprob_sum": total, "logprob_mean": mean,
            "perplexity": math.exp(-mean) if tokens else math.nan}


def logratio(scored: list[float], behaviour: list[float], known: list[int]) -> list[float]:
    """log p_base - log pi_b per token whose behaviour log-prob is known (scored may be cut by the window)."""
    return [s - b for s, b, k in zip(scored, behaviour, known) if k]


def row_record(row: dict[str, Any], kept: list[float], expert: list[float], behaviour: list[float],
               known: list[int], truncated: tuple[bool, bool]) -> dict[str, Any]:
    ratio = logratio(kept, behaviour, known)
    record = {"id": row["id"], "source": row["source"]}
    for prefix, scores in (("kept", kept), ("expert", expert)):
        record.update({f"{prefix}_{key}": value for key, value in response_metrics(scores).items()})
    record.update({"logratio": ratio, "logratio_mean": float(np.mean(ratio)) if ratio else math.nan,
                   "logratio_var": float(np.var(ratio)) if ratio else math.nan,
                   "kept_truncated": truncated[0], "expert_truncated": truncated[1]})
    return record


def score_chunk(rows: list[dict[str, Any]], backend: Backend, tokenizer) -> list[dict[str, Any]]:
    """Score the kept response and the expert solution of each row under `backend` (one call for all of them;
    an expert row's kept response is its expert solution, scored once)."""
    kept = [training_completion(row, tokenizer) for row in rows]
    expert = [k[0] if row["source"] == "expert" else expert_completion(row["prompt"], row["solution"], tokenizer)
              for row, k in zip(rows, kept)]
    # what fits the window after the prompt, with the one token to spare that vLLM's scoring needs
    lengths = backend.prompt_lengths([row["prompt"] for row in rows])
    room = [max(0, backend.max_model_len - length - 1) for length in lengths]
    requests = [(i, ids) for i, (ids, _, _) in enumerate(kept)]
    requests += [(i, expert[i]) for i, row in enumerate(rows) if row["source"] != "expert"]
    scores = _score_fitting(backend, [rows[i]["prompt"] for i, _ in requests], [ids[:room[i]] for i, ids in requests])
    kept_scores, expert_scores = scores[:len(rows)], iter(scores[len(rows):])
    records = []
    for i, row in enumerate(rows):
        expert_scored = kept_scores[i] if row["source"] == "expert" else next(expert_scores)
        truncated = (len(kept[i][0]) > room[i], len(expert[i]) > room[i])
        records.append(row_record(row, kept_scores[i], expert_scored, kept[i][1], kept[i][2], truncated))
    return records


def _score_fitting(backend: Backend, prompts: list[str], completions: list[list[int]]) -> list[list[float]]:
    """Scores of the non-empty completions; an empty one (a prompt that fills the window) gets none, unscored."""
    asked = [i for i, ids in enumerate(completions) if ids]
    scores = backend.score([prompts[i] for i in asked], [completions[i] for i in asked])
    result: list[list[float]] = [[] for _ in completions]
    for i, logprobs in zip(asked, scores):
        result[i] = logprobs
    return result


# --- resumable scoring of a dataset --------------------------------------------------------------------------


def score_dataset(dataset: pd.DataFrame, backend_factory: Callable[[], Backend], tokenizer, work: str | Path, *,
                  chunk_size: int = 512, resume_key: dict[str, Any] | None = None) -> pd.DataFrame:
    """Per-row scores of a dataset that carries `solution` (see `with_solutions`), in its row order.

    Rows are scored `chunk_size` at a time; each finished chunk is written to `<work>/part-<chunk>.parquet`, so a
    killed job resumes at its first missing chunk. Parts made from other data or another `resume_key` (model,
    revision, backend and its options) are discarded. The work directory is removed once all rows are scored.
    """
    work = Path(work)
    fingerprint = {"chunk_size": chunk_size, "resume_key": resume_key or {}, "data_sha256": data_digest(dataset)}
    reset_if_stale(work, fingerprint)
    records = dataset.to_dict("records")
    chunks = [records[start:start + chunk_size] for start in range(0, len(records), chunk_size)]
    todo = [index for index in range(len(chunks)) if not _part(work, index).exists()]
    if len(todo) < len(chunks):
        log.info("resumed: %d of %d chunks already scored in %s", len(chunks) - len(todo), len(chunks), work)
    backend = backend_factory() if todo else None
    scored = len(records) - sum(len(chunks[index]) for index in todo)
    for index in todo:
        _write_rows(score_chunk(chunks[index], backend, tokenizer), _part(work, index))
        scored += len(chunks[index])
        log.info("scored %d/%d rows", scored, len(records))
    table = pa.concat_tables([pq.read_table(_part(work, index), schema=ROW_SCHEMA) for index in range(len(chunks))])\
        if chunks else ROW_SCHEMA.empty_table()
    rows = table.to_pandas()
    if rows["id"].tolist() != dataset["id"].tolist():
        raise RuntimeError(f"{work}: the scored rows do not match the dataset's rows; remove {work} and rerun")
    shutil.rmtree(work, ignore_errors=True)
    return rows


def data_digest(dataset: pd.DataFrame) -> str:
    """What decides the scores of a dataset besides the model: ids, sources, prompts, responses, solutions."""
    digest = hashlib.sha256()
    for row in dataset.itertuples(index=False):
        ids = row.completion_token_ids
        digest.update(json.dumps([row.id, row.source, row.prompt, row.completion, row.solution,
                                  None if ids is None else [int(t) for t in ids]]).encode())
    return digest.hexdigest()


def _part(work: Path, index: int) -> Path:
    return work / f"part-{index:06d}.parquet"


def _write_rows(records: list[dict[str, Any]], path: str | Path) -> None:
    """Per-row scores with their fixed schema (a chunk of expert rows alone has only empty log-ratio lists)."""
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pylist(records, schema=ROW_SCHEMA), tmp)


def write_rows(rows: pd.DataFrame, path: str | Path) -> None:
    _write_rows(rows.to_dict("records"), path)


# --- summaries -----------------------------------------------------------------------------------------------


def distribution(values, quantiles: dict[str, float] = ROW_QUANTILES) -> dict[str, float | None]:
    """Mean, median and quantiles of the finite values (linear interpolation, numpy's default); all None when
    there are none."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    keys = ["mean", "median", *quantiles]
    if not len(values):
        return dict.fromkeys(keys)
    stats = {"mean": float(values.mean()), "median": float(np.median(values))}
    stats.update({key: float(np.quantile(values, q)) for key, q in quantiles.items()})
    return stats


def token_distribution(ratios) -> dict[str, Any]:
    """Pooled token-level statistics of the log-ratios of many rows (population variance)."""
    tokens = np.concatenate([np.asarray(r, dtype=float) for r in ratios]) if len(ratios) else np.zeros(0)
    if not len(tokens):
        return {"tokens": 0, "mean": None, "var": None, "std": None, **dict.fromkeys(TOKEN_QUANTILES)}
    return {"tokens": int(len(tokens)), "mean": float(tokens.mean()), "var": float(tokens.var()),
            "std": float(tokens.std()),
            **{key: float(np.quantile(tokens, q)) for key, q in TOKEN_QUANTILES.items()}}


def source_summary(rows: pd.DataFrame, source: str) -> dict[str, Any]:
    """Row count, kept and expert distributions per metric, and (sampled sources and all) pooled log-ratios."""
    part = rows if source == "all" else rows[rows["source"] == source]
    summary = {"rows": int(len(part))}
    for prefix in ("kept", "expert"):
        summary[prefix] = {metric: distribution(part[f"{prefix}_{metric}"]) for metric in METRICS}
    if source != "expert":
        summary["logratio"] = token_distribution(list(part["logratio"]))
    return summary


def summarize(rows: pd.DataFrame, model: str, scored_with: dict[str, Any]) -> dict[str, Any]:
    return {"model": model, "scored_with": scored_with,
            "sources": {source: source_summary(rows, source) for source in (*SOURCES, "all")}}


def checkpoint_shift(rows: pd.DataFrame, base_rows: pd.DataFrame) -> pd.DataFrame:
    """Mean token log-prob of the kept and expert responses under a checkpoint beside the base model's, and the
    difference (checkpoint - base): how far training moved the policy towards each."""
    base = base_rows.set_index("id").loc[rows["id"]]
    shift = pd.DataFrame({"id": rows["id"].to_numpy(), "source": rows["source"].to_numpy()})
    for prefix in ("kept", "expert"):
        column = f"{prefix}_logprob_mean"
        shift[column] = rows[column].to_numpy()
        shift[f"{column}_base"] = base[column].to_numpy()
        shift[f"{column}_delta"] = shift[column] - shift[f"{column}_base"]
    return shift


def checkpoint_summary(rows: pd.DataFrame, shift: pd.DataFrame, model: str, method: str,
                       scored_with: dict[str, Any]) -> dict[str, Any]:
    """The per-source summary of the checkpoint's scores, with the distribution of each row's shift."""
    summary = summarize(rows, model, scored_with)
    summary["method"] = method
    for source, entry in summary["sources"].items():
        part = shift if source == "all" else shift[shift["source"] == source]
        entry["kept_delta"] = distribution(part["kept_logprob_mean_delta"])
        entry["expert_delta"] = distribution(part["expert_logprob_mean_delta"])
    return summary


# --- the stage -----------------------------------------------------------------------------------------------


def run_policy_gap(dataset: pd.DataFrame, problems: pd.DataFrame, backend_factory: Callable[[], Backend],
                   tokenizer, *, model: str, scored_with: dict[str, Any], work: str | Path, chunk_size: int = 512,
                   resume_key: dict[str, Any] | None = None, where: str = "the rewritten dataset") -> \
        tuple[pd.DataFrame, dict[str, Any]]:
    """Per-row scores and the per-source summary of one dataset under one model (base or checkpoint)."""
    rows = score_dataset(with_solutions(dataset, problems, where), backend_factory, tokenizer, work,
                         chunk_size=chunk_size, resume_key=resume_key)
    summary = summarize(rows, model, scored_with)
    for source in (*SOURCES, "all"):
        entry = summary["sources"][source]
        log.info("%s: %d rows, mean token log-prob kept %s vs expert %s", source, entry["rows"],
                 entry["kept"]["logprob_mean"]["mean"], entry["expert"]["logprob_mean"]["mean"])
    return rows, summary
