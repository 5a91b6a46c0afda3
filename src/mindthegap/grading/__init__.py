"""Math answer grading: extraction, normalisation and equivalence, with a status for every verdict.

Public interface (used by the rest of the pipeline)::

    STATUSES, Verdict, extract_answer, last_boxed, gold_from_benchmark, judge, judge_batch

``judge`` never evaluates model text as Python.  Its fast paths (strings, exact rationals, numeric
identity testing at fixed points) run in-process with bounded work; only what they cannot decide goes to a
killable sympy/latex2sympy2 worker process under the remaining time budget.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Sequence

from .compare import equivalent
from .extract import extract_gold_raw, extract_raw, gold_from_benchmark, last_boxed
from .mathexpr import TooBig
from .normalize import has_percent, normalize
from .sandbox import SandboxTimeout, sym_equal

__all__ = [
    "STATUSES", "Verdict", "extract_answer", "last_boxed", "gold_from_benchmark", "judge", "judge_batch",
    "normalize",
]

STATUSES = ("correct", "wrong", "no_answer", "unparsable", "timeout")


@dataclass(frozen=True)
class Verdict:
    correct: bool
    status: str  # one of STATUSES
    extracted: str | None  # the answer extracted from pred (None if none)


def extract_answer(text: str) -> str | None:
    """Harness-compatible extraction from a whole response, normalised; None when there is no answer."""
    raw = extract_raw(text)
    if raw is None:
        return None
    norm = normalize(raw)
    return norm or None


def _clean(s) -> str:
    if s is None:
        return ""
    if isinstance(s, bytes):
        s = s.decode("utf-8", errors="replace")
    s = str(s)
    # lone surrogates (undecodable bytes smuggled through surrogateescape) -> replacement character
    return s.encode("utf-8", errors="replace").decode("utf-8")


def _judge(gold: str, pred: str, timeout: float, ordered_lists: bool) -> Verdict:
    start = time.monotonic()
    try:
        gold, pred = _clean(gold), _clean(pred)
        raw_pred = extract_raw(pred)
        if raw_pred is None:
            return Verdict(False, "no_answer", None)
        np_ = normalize(raw_pred)
        if not np_:
            return Verdict(False, "no_answer", None)
        raw_gold = extract_gold_raw(gold)
        ng = normalize(raw_gold) if raw_gold is not None else ""
        if not ng:
            return Verdict(False, "unparsable", np_)
        if ng == np_ or ng.lower() == np_.lower():
            return Verdict(True, "correct", np_)
        percent = has_percent(raw_gold) or has_percent(raw_pred)

        def sym(a: str, b: str):
            return sym_equal(a, b, timeout - (time.monotonic() - start))

        try:
            r = equivalent(ng, np_, percent=percent, sym=sym, ordered_lists=ordered_lists)
        except TooBig:
            return Verdict(False, "timeout", np_)
        except SandboxTimeout:
            return Verdict(False, "timeout", np_)
        except RecursionError:
            return Verdict(False, "unparsable", np_)
        if r is None:
            return Verdict(False, "unparsable", np_)
        if time.monotonic() - start > timeout:
            return Verdict(False, "timeout", np_)
        return Verdict(bool(r), "correct" if r else "wrong", np_)
    except SandboxTimeout:
        return Verdict(False, "timeout", None)
    except Exception:  # noqa: BLE001 - a grader bug must not stop a batch; it is counted as unparsable
        return Verdict(False, "unparsable", None)


_CACHE: dict[tuple[str, str, float, bool], Verdict] = {}
_CACHE_MAX = 200_000
_cache_lock = threading.Lock()


def judge(gold: str, pred: str, timeout: float = 3.0, *, ordered_lists: bool = True) -> Verdict:
    """Judge one prediction (bare answer or whole response) against a gold answer.  Safe in any thread.

    ``ordered_lists`` (default, the paper's harness): a bare list "1, 2" is matched in order, as the Qwen2.5-Math
    harness does; False: as a set, as Math-Verify does.  Tuples are ordered and sets unordered either way."""
    key = (gold if isinstance(gold, str) else repr(gold), pred if isinstance(pred, str) else repr(pred), float(timeout),
           bool(ordered_lists))
    v = _CACHE.get(key)
    if v is not None:
        return v
    v = _judge(gold, pred, timeout, bool(ordered_lists))
    if v.status != "timeout":
        with _cache_lock:
            if len(_CACHE) >= _CACHE_MAX:
                _CACHE.clear()
            _CACHE[key] = v
    return v


def _judge_star(args: tuple[str, str, float, bool]) -> Verdict:
    gold, pred, timeout, ordered_lists = args
    return judge(gold, pred, timeout, ordered_lists=ordered_lists)


def _mp_context():
    if sys.platform.startswith("linux") and threading.active_count() == 1:
        return mp.get_context("fork")
    return mp.get_context("spawn")


def judge_batch(
    pairs: Sequence[tuple[str, str]], workers: int = 1, timeout: float = 3.0, progress: bool = False, *,
    ordered_lists: bool = True,
) -> list[Verdict]:
    """Judge many (gold, pred) pairs; results in input order.  Identical pairs are judged once; with
    ``workers > 1`` the distinct pairs are spread over worker processes in chunks."""
    keys: dict[tuple[str, str], int] = {}
    order: list[int] = []
    unique: list[tuple[str, str]] = []
    for g, p in pairs:
        k = (g, p)
        idx = keys.get(k)
        if idx is None:
            idx = keys[k] = len(unique)
            unique.append(k)
        order.append(idx)
    results: list[Verdict | None] = [None] * len(unique)
    n = len(unique)
    workers = max(1, int(workers))
    report_every = max(1, n // 20)
    if workers == 1 or n < 2 * workers:
        for i, (g, p) in enumerate(unique):
            results[i] = judge(g, p, timeout, ordered_lists=ordered_lists)
            if progress and (i + 1) % report_every == 0:
                print(f"graded {i + 1}/{n} distinct pairs", file=sys.stderr, flush=True)
    else:
        chunksize = max(1, min(256, n // (workers * 8)))
        with _mp_context().Pool(processes=workers) as pool:
            it = pool.imap(_judge_star, ((g, p, timeout, ordered_lists) for g, p in unique), chunksize=chunksize)
            for i, v in enumerate(it):
                results[i] = v
                if progress and (i + 1) % report_every == 0:
                    print(f"graded {i + 1}/{n} distinct pairs", file=sys.stderr, flush=True)
    return [results[i] for i in order]  # type: ignore[misc]
