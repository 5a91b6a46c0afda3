"""Parity with the Qwen2.5-Math harness that produced the paper's table (../shared/notes/eval-harness.md): words
that hold no number, stray trailing LaTeX characters, and the order of tuples and lists."""

from __future__ import annotations

import pytest

from mindthegap.grading import judge
from mindthegap.grading.normalize import normalize

# ----------------------------------------------------------------- a word without a number is never a number

NOT_A_NUMBER = [
    ("0", "none"),  # the harness's word2number refuses "none"; it was mapped to 0
    ("0", "\\text{none}"),
    ("0", "The answer is none."),
    ("10", "a_{16}"),  # a subscripted variable, not the hexadecimal numeral a
    ("10", "A_{11}"),  # a labelled point A_11, not a numeral in base 11
    ("33", "x_{36}"),
    ("2", "2k"),  # 2k is twice k (or 2000), never 2: k is not a unit here
    ("3", "3 n"),  # n is a variable, not a newton
    ("3", "3 k"),
    ("2k", "2"),
]


@pytest.mark.parametrize("gold, pred", NOT_A_NUMBER)
def test_a_word_without_a_number_is_never_read_as_a_number(gold, pred):
    verdict = judge(gold, pred)
    assert not verdict.correct, (gold, pred, verdict)


@pytest.mark.parametrize("gold, pred", [
    ("2", "two"),  # the harness converts number words (word2number): they do hold a number
    ("0", "zero"),
    ("42", "52_8"),  # a numeral in base 8
    ("163", "A3_{16}"),  # hexadecimal digits are capitals and the numeral holds a digit
    ("3", "3 m"),  # a unit after a space, as the harness drops it
    ("10", "10\\text{ cm}"),
    ("\\text{none}", "None"),  # a word answer still matches itself
    ("2n+1", "2n + 1"),
])
def test_numbers_written_as_words_numerals_and_units_still_count(gold, pred):
    verdict = judge(gold, pred)
    assert verdict.correct, (gold, pred, verdict)


def test_none_stays_a_word():
    assert normalize("none") == "none"
    assert normalize("\\text{None}") == "None"


# ----------------------------------------------------------------- stray trailing LaTeX characters

TRAILING = ["\\\\", "}", "$", "\\)", ".", "\\!", "\\ ", "\\\\)", "\\]", "}}", "\\\\ \\\\", "\\\\.", "\\,", "\\;",
            "\\\\\\!"]
ANSWERS = ["5", "\\frac{1}{2}", "(1,2)", "x+1", "2\\sqrt{3}", "[0,1)", "\\{1,2\\}"]


@pytest.mark.parametrize("tail", TRAILING)
@pytest.mark.parametrize("answer", ANSWERS)
def test_stray_trailing_latex_never_makes_an_answer_unparsable(answer, tail):
    verdict = judge(answer, answer + tail)
    assert verdict.correct and verdict.status == "correct", (answer, tail, verdict)
    assert verdict.extracted == normalize(answer), (answer, tail, verdict)


def test_trailing_characters_that_belong_to_the_answer_are_kept():
    assert normalize("\\begin{pmatrix}1\\\\2\\end{pmatrix}") == "\\begin{pmatrix}1\\\\2\\end{pmatrix}"
    assert normalize("\\{1,2\\}") == "{1,2}"
    assert normalize("(0,1]") == "(0,1]"
    assert normalize("\\frac{1}{2}") == "\\frac{1}{2}"
    assert not judge("(0,1)", "(0,1]").correct


# ----------------------------------------------------------------- order: the harness's math_equal

@pytest.mark.parametrize("gold, pred", [
    ("(1,2)", "(2,1)"),  # tuples element-wise, in order
    ("(1,2,3)", "(3,2,1)"),
    ("[1,2,3]", "[3,2,1]"),
    ("1,2", "2,1"),  # a bare list is a tuple to the harness (parse_expr), so order counts
    ("1, -2", "-2, 1"),
    ("(1,8,19), (2,7,13)", "(2,7,13), (1,8,19)"),  # OlympiadBench lists of tuples
    ("\\boxed{1}, \\boxed{2}", "We get $\\boxed{2}$ and $\\boxed{1}$."),
])
def test_tuples_and_lists_are_compared_in_order(gold, pred):
    verdict = judge(gold, pred)
    assert not verdict.correct, (gold, pred, verdict)


@pytest.mark.parametrize("gold, pred", [
    ("(1,2)", "\\left(1, 2\\right)"),
    ("1,2", "1, 2"),
    ("(1,8,19), (2,7,13)", "(1, 8, 19),(2, 7, 13)"),
    ("\\{1,2\\}", "\\{2,1\\}"),  # a set: the harness's parse_expr makes it a Python set, unordered
    ("\\pm 2", "-2, 2"),  # ours: a +- expansion has no order (the harness cannot parse \pm at all)
    ("1 \\pm \\sqrt{19}", "1-\\sqrt{19}, 1+\\sqrt{19}"),
])
def test_same_order_sets_and_plus_minus_are_equal(gold, pred):
    verdict = judge(gold, pred)
    assert verdict.correct, (gold, pred, verdict)
