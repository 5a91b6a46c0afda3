"""Benchmark: our grader vs math-verify 0.9 on the same pairs, timed in one run.

    .venv/bin/python benchmarks/grader/bench.py --mv-python /tmp/mv-venv/bin/python

Pair sets: (a) Math-Verify's own suite (../shared/data/grader_cases/mathverify_cases.jsonl, labelled);
(b) MATH500 self-consistency: each problem's ``answer`` vs the last ``\\boxed{}`` of its solution (label 1) and
against another problem's last box (label 1 only when the two answers are identical strings).
math-verify runs in its own virtualenv (it needs a newer antlr runtime than latex2sympy2) through a
subprocess that times only its parse+verify loop (imports excluded); ours is timed in this process after
starting its sympy worker (the equivalent of an import).  Then the speed-up of ``judge_batch`` with 1 and 2
workers is measured on a larger set of distinct pairs (each MATH500 gold vs the boxed answers of 16 other
problems plus its own).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
SHARED = ROOT.parent / "shared"

from mindthegap import grading  # noqa: E402
from mindthegap.grading import judge, judge_batch, last_boxed  # noqa: E402
from mindthegap.grading import sandbox  # noqa: E402

MV_RUNNER = r'''
import json, sys, time
from math_verify import parse, verify
from math_verify.parser import LatexExtractionConfig, ExprExtractionConfig
pairs = json.load(open(sys.argv[1]))
out = []
t0 = time.perf_counter()
for g, p, wrap in pairs:
    if wrap:
        g, p = "$\\boxed{" + g + "}$", "$\\boxed{" + p + "}$"
    try:
        ok = bool(verify(parse(g), parse(p)))
    except Exception:
        ok = False
    out.append(ok)
dt = time.perf_counter() - t0
json.dump({"seconds": dt, "verdicts": out}, open(sys.argv[2], "w"))
'''


def sympy_src_to_latex(s: str) -> str:
    """The 4 cases given as sympy constructors (sympy.Rational(1, 3) + 1) as plain text, without eval."""
    s = re.sub(r"sympy\.Rational\((-?\d+),\s*(\d+)\)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"sympy\.Float\(([-\d.eE]+)\)", r"\1", s)
    return s


def load_mv_cases():
    rows = [json.loads(x) for x in open(SHARED / "data/grader_cases/mathverify_cases.jsonl")]
    pairs = []
    for r in rows:
        g, p = r["gold"], r["pred"]
        if r.get("input_kind") != "string":
            g, p = sympy_src_to_latex(g), sympy_src_to_latex(p)
        pairs.append((g, p, bool(r["expected"]), False))
    return pairs


def load_math500():
    rows = [json.loads(x) for x in open(SHARED / "data/benchmarks/math500/test.jsonl")]
    rng = random.Random(0)
    self_pairs, mism = [], []
    for i, r in enumerate(rows):
        self_pairs.append((r["answer"], last_boxed(r["solution"]), True, True))
        o = rows[(i + 1 + rng.randrange(len(rows) - 1)) % len(rows)]
        mism.append((r["answer"], last_boxed(o["solution"]), r["answer"] == o["answer"], True))
    return rows, self_pairs, mism


def run_ours(pairs):
    grading._CACHE.clear()
    t0 = time.perf_counter()
    verdicts = [judge(g, p) for g, p, _, _ in pairs]
    return time.perf_counter() - t0, verdicts


def run_mv(pairs, mv_python):
    with tempfile.TemporaryDirectory() as d:
        inp, outp, script = Path(d, "in.json"), Path(d, "out.json"), Path(d, "mv_runner.py")
        inp.write_text(json.dumps([(g, p, wrap) for g, p, _, wrap in pairs]))
        script.write_text(MV_RUNNER)
        subprocess.run([mv_python, str(script), str(inp), str(outp)], check=True)
        res = json.loads(outp.read_text())
    return res["seconds"], res["verdicts"]


def agreement(pairs, verdicts):
    ok = sum(1 for (_, _, lab, _), v in zip(pairs, verdicts) if bool(getattr(v, "correct", v)) == lab)
    return ok, len(pairs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mv-python", default="/tmp/mv-venv/bin/python",
                    help="python of a virtualenv with math-verify==0.9.0 (empty string: skip the peer)")
    ap.add_argument("--scale-pairs", type=int, default=40000, help="distinct pairs for the worker speed-up")
    args = ap.parse_args()

    mv_cases = load_mv_cases()
    rows, self_pairs, mism = load_math500()
    sets = {"mathverify_cases": mv_cases, "math500_self": self_pairs, "math500_mismatched": mism}
    all_pairs = mv_cases + self_pairs + mism

    sandbox.warm()
    t_ours, v_ours = run_ours(all_pairs)
    have_mv = bool(args.mv_python) and Path(args.mv_python).exists()
    if have_mv:
        t_mv, v_mv = run_mv(all_pairs, args.mv_python)
    print(f"pairs: {len(all_pairs)} (mathverify_cases {len(mv_cases)}, MATH500 self {len(self_pairs)}, "
          f"MATH500 mismatched {len(mism)})")
    print(f"ours        : {len(all_pairs) / t_ours:9.1f} pairs/s ({t_ours:.2f} s, 1 process)")
    if have_mv:
        print(f"math-verify : {len(all_pairs) / t_mv:9.1f} pairs/s ({t_mv:.2f} s, 1 process)")
        print(f"speed ratio : {t_mv / t_ours:9.1f}x")
    off = 0
    for name, pairs in sets.items():
        vo = v_ours[off : off + len(pairs)]
        ok, n = agreement(pairs, vo)
        line = f"agreement {name:20s}: ours {ok}/{n} = {100 * ok / n:.1f} %"
        if have_mv:
            okm, _ = agreement(pairs, v_mv[off : off + len(pairs)])
            line += f" | math-verify {okm}/{n} = {100 * okm / n:.1f} %"
        print(line)
        off += len(pairs)
    mv_rows = [json.loads(x) for x in open(SHARED / "data/grader_cases/mathverify_cases.jsonl")]
    for i, ((g, p, lab, _), v) in enumerate(zip(mv_cases, v_ours[: len(mv_cases)])):
        if v.correct != lab:
            print(f"  disagreement mathverify_cases[{i}] ({mv_rows[i]['source_test'].split('::')[-1]}): "
                  f"label {int(lab)}, ours {v.status}: gold={g[-60:]!r} pred={p[-60:]!r}")
    statuses = {}
    for v in v_ours:
        statuses[v.status] = statuses.get(v.status, 0) + 1
    print("our statuses:", statuses)

    # worker speed-up on distinct pairs
    rng = random.Random(1)
    boxes = [last_boxed(r["solution"]) for r in rows]
    scale = []
    while len(scale) < args.scale_pairs:
        i = rng.randrange(len(rows))
        j = rng.randrange(len(rows))
        scale.append((rows[i]["answer"], f"... so the answer is $\\boxed{{{boxes[j]}}}$. (variant {len(scale)})"))
    timings = {}
    for w in (1, 2):
        grading._CACHE.clear()
        t0 = time.perf_counter()
        judge_batch(scale, workers=w)
        timings[w] = time.perf_counter() - t0
        print(f"judge_batch workers={w}: {len(scale) / timings[w]:9.1f} pairs/s ({timings[w]:.2f} s, "
              f"{len(scale)} distinct pairs, including pool start-up)")
    print(f"speed-up 2 vs 1 workers: {timings[1] / timings[2]:.2f}x (cores: {os.cpu_count()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
