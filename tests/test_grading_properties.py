"""Property-based tests (hypothesis) of extraction and normalisation."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mindthegap.grading import STATUSES, extract_answer, judge, last_boxed
from mindthegap.grading.normalize import normalize

LATEXISH = st.lists(
    st.sampled_from(list("0123456789+-*/^_=<>()[]{}|,.;:!$% \n\\abcxyzABC")
                             + ["\\frac", "\\sqrt", "\\boxed{", "\\left(", "\\right)", "\\text{", "\\pi",
                                "\\dfrac", "\\circ", "\\le ", "\\infty", "\\%", "\\$", "{,}", "\\!", " and ",
                                "\\begin{pmatrix}", "\\end{pmatrix}", "&", "\\\\", "e5", "1,000", "\\cup"]),
    max_size=40,
).map("".join)
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.text(max_size=200))
def test_normalize_total_and_idempotent_on_any_text(s):
    n = normalize(s)
    assert isinstance(n, str)
    assert normalize(n) == n


@SETTINGS
@given(LATEXISH)
def test_normalize_idempotent_on_latexish(s):
    n = normalize(s)
    assert normalize(n) == n


@SETTINGS
@given(st.one_of(st.text(max_size=300), LATEXISH))
def test_extraction_never_crashes(s):
    a = extract_answer(s)
    assert a is None or (isinstance(a, str) and a != "")
    b = last_boxed(s)
    assert b is None or isinstance(b, str)


@SETTINGS
@given(LATEXISH, LATEXISH)
def test_judge_total(gold, pred):
    v = judge(gold, pred, timeout=2.0)
    assert v.status in STATUSES
    assert v.correct == (v.status == "correct")


@SETTINGS
@given(st.integers(-10**12, 10**12), st.integers(1, 10**6))
def test_numbers_and_fractions(n, d):
    assert judge(str(n), f"\\boxed{{{n}}}").correct
    assert judge(f"\\frac{{{n}}}{{{d}}}", f"The answer is $\\frac{{{n * 3}}}{{{d * 3}}}$.").correct
    assert not judge(str(n), f"\\boxed{{{n + 1}}}").correct


@SETTINGS
@given(st.integers(1000, 10**9))
def test_thousands_separators(n):
    assert judge(str(n), f"\\boxed{{{n:,}}}").correct
