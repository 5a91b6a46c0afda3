"""Safety and robustness of the grader: no code execution, hard time limits from threads and pools,
pathological inputs."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from mindthegap.grading import STATUSES, judge, judge_batch

SRC = Path(__file__).resolve().parents[1] / "src"
# outside the fast parser (\lfloor), so it goes to the sympy worker, which would compute the sum for ages
SLOW_PRED = r"\boxed{\lfloor \sum_{k=1}^{10^{9}} k^{k} \rfloor}"


def _payloads(marker: Path) -> list[str]:
    m = str(marker)
    return [
        f"__import__('os').system('touch {m}')",
        f"\\boxed{{__import__('os').system('touch {m}')}}",
        f"The answer is $__import__(\"pathlib\").Path(\"{m}\").touch()$",
        f"\\boxed{{exec(\"open('{m}', 'w').write('x')\")}}",
        f"\\boxed{{eval(\"open('{m}', 'w')\")}}",
        f"\\boxed{{(lambda: open('{m}', 'w'))()}}",
        f"Symbol('x').__class__.__base__.__subclasses__(); open('{m}','w')",
        f"\\boxed{{\\text{{__import__('os').system('touch {m}')}}}}",
        f"\\boxed{{x = __import__('os').system('touch {m}')}}",
        f"\\frac{{__import__('os').system('touch {m}')}}{{2}}",
    ]


def test_no_code_from_predictions_runs(tmp_path):
    marker = tmp_path / "pwned"
    for i, pred in enumerate(_payloads(marker)):
        for gold in ("-7777", "y", "\\frac{1}{2}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"):
            v = judge(gold, pred, timeout=5.0)
            assert v.status in STATUSES and not v.correct
            assert not marker.exists(), f"payload {i} ran code: {pred!r}"
    # the gold answer is untrusted too
    for pred in _payloads(marker):
        judge(pred, "0", timeout=5.0)
    assert not marker.exists()


def test_fast_path_never_imports_sympy():
    code = (
        "import sys; from mindthegap.grading import judge_batch;"
        "pairs=[('\\\\frac{1}{2}','0.5'),('x^2+2x+1','(x+1)^2'),('(1,2)','(1, 2)'),('5','\\\\boxed{6}')];"
        "out=judge_batch(pairs); assert [v.correct for v in out]==[True,True,True,False], out;"
        "assert 'sympy' not in sys.modules and 'latex2sympy2' not in sys.modules; print('ok')"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_timeout_in_a_non_main_thread():
    judge("1", "\\boxed{\\sqrt{x^2}+\\int_0^1 t dt}", timeout=10)  # start the sympy worker outside the timing
    box: dict = {}

    def work():
        t0 = time.monotonic()
        box["v"] = judge("5", SLOW_PRED, timeout=1.0)
        box["dt"] = time.monotonic() - t0

    th = threading.Thread(target=work)
    th.start()
    th.join(30)
    assert not th.is_alive()
    assert box["v"].status == "timeout" and not box["v"].correct
    assert box["dt"] < 4.0, box["dt"]
    # the grader still works after a killed worker
    assert judge("\\frac{1}{2}", "0.5").correct


def test_timeout_in_a_worker_pool():
    pairs = [("5", SLOW_PRED), ("1", "\\boxed{1}"), ("7", SLOW_PRED.replace("k^{k}", "k^{2k}")), ("2", "3")]
    t0 = time.monotonic()
    out = judge_batch(pairs, workers=2, timeout=1.0)
    assert time.monotonic() - t0 < 20
    assert [v.status for v in out] == ["timeout", "correct", "timeout", "wrong"]


def test_pathological_inputs_come_back_quickly():
    cases = [
        ("10^{10^{10^{10}}}", "10^{10^{10^{11}}}"),
        ("1", "2^{2^{2^{2^{2^{2}}}}}"),
        ("5", "x" * 100_000),
        ("5", "The answer is " + "(1+" * 5_000 + "1" + ")" * 5_000),
        ("1", "\\boxed{" + "{" * 50_000 + "1"),
        ("1", "(" * 100_000),
        ("1", "{" * 3_000 + "2" + "}" * 3_000),
        ("3", "9" * 5_000),
        ("1", b"\xff\xfe\xc3\x28 \\boxed{1".decode("utf-8", errors="surrogateescape")),
        ("\udcff", "1"),
        ("1", "\\frac{" * 500 + "1" + "}{2}" * 500),
        ("1", "1" + "^{9" * 200 + "}" * 200),
        ("x", "\\boxed{" + "x+" * 20_000 + "x}"),
    ]
    for gold, pred in cases:
        t0 = time.monotonic()
        v = judge(gold, pred, timeout=2.0)
        dt = time.monotonic() - t0
        assert v.status in STATUSES
        assert dt < 4.0, (gold[:20], pred[:40], dt, v)
    v = judge("1", "2^{2^{2^{2^{2^{2}}}}}")
    assert v.status == "timeout" and not v.correct
    # a batch mixing pathological and normal pairs completes, in order
    out = judge_batch([(g, p) for g, p in cases] + [("2", "\\boxed{2}")], timeout=2.0)
    assert out[-1].correct and len(out) == len(cases) + 1
