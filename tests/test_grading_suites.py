"""Agreement with labelled suites: Math-Verify's own cases and MATH500 self-consistency."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from mindthegap.grading import judge, judge_batch, last_boxed

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MV_CASES = SHARED / "data" / "grader_cases" / "mathverify_cases.jsonl"
MATH500 = SHARED / "data" / "benchmarks" / "math500" / "test.jsonl"


def _sympy_src_to_latex(s: str) -> str:
    s = re.sub(r"sympy\.Rational\((-?\d+),\s*(\d+)\)", r"\\frac{\1}{\2}", s)
    return re.sub(r"sympy\.Float\(([-\d.eE]+)\)", r"\1", s)


@pytest.mark.skipif(not MV_CASES.exists(), reason=f"shared data not found: {MV_CASES} (../shared is absent)")
def test_mathverify_cases_agreement():
    rows = [json.loads(x) for x in MV_CASES.read_text().splitlines() if x.strip()]
    pairs = []
    for r in rows:
        g, p = r["gold"], r["pred"]
        if r.get("input_kind") != "string":
            g, p = _sympy_src_to_latex(g), _sympy_src_to_latex(p)
        pairs.append((g, p))
    # Math-Verify's labels read a bare list "1, 2" as a set: judge them that way
    as_sets = judge_batch(pairs, ordered_lists=False)
    agree = sum(v.correct == bool(r["expected"]) for v, r in zip(as_sets, rows))
    assert agree / len(rows) >= 0.95, f"agreement {agree}/{len(rows)}"
    # the harness's reading (the default: lists in order) rejects exactly the lists given in another order
    in_order = judge_batch(pairs)
    changed = [i for i, (a, b) in enumerate(zip(as_sets, in_order)) if a.correct != b.correct]
    assert changed and all(as_sets[i].correct and not in_order[i].correct for i in changed)
    assert all("," in in_order[i].extracted for i in changed), [in_order[i].extracted for i in changed]


@pytest.mark.skipif(not MATH500.exists(), reason=f"shared data not found: {MATH500} (../shared is absent)")
def test_math500_self_consistency():
    rows = [json.loads(x) for x in MATH500.read_text().splitlines() if x.strip()]
    assert len(rows) == 500
    bad = [(r["answer"], v) for r in rows if not (v := judge(r["answer"], last_boxed(r["solution"]))).correct]
    assert not bad, bad[:5]
    rng = random.Random(0)
    false_pos = []
    for i, r in enumerate(rows):
        for _ in range(2):
            o = rows[(i + 1 + rng.randrange(len(rows) - 1)) % len(rows)]
            v = judge(r["answer"], last_boxed(o["solution"]))
            if v.correct and r["answer"].replace(" ", "") != o["answer"].replace(" ", ""):
                false_pos.append((r["answer"], o["answer"]))
    assert not false_pos, false_pos[:10]


BENCH = SHARED / "data" / "benchmarks"


@pytest.mark.skipif(not BENCH.exists(), reason=f"shared data not found: {BENCH} (../shared is absent)")
@pytest.mark.parametrize("bench", ["math500", "minerva_math", "olympiadbench", "aime24", "amc23", "gsm8k"])
def test_gold_answers_of_all_benchmarks(bench):
    from mindthegap.grading import gold_from_benchmark

    path = BENCH / bench / "test.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    golds = [gold_from_benchmark(r, bench) for r in rows]
    assert all(isinstance(g, str) and g for g in golds)
    # every gold answer is judged equal to itself, boxed in a response
    out = judge_batch([(g, f"Hence the result is $\\boxed{{{g}}}$.") for g in golds])
    wrong = [(g, v) for g, v in zip(golds, out) if not v.correct]
    assert not wrong, wrong[:5]
