"""The demo's task without a model: two policies' solution styles, the levels' difficulty, the pre-training data."""

import random
import re

import pytest

from mindthegap import demo, prompts

EXPERT_PHRASES = ("Add the ones", "Multiply the", "Start with", "So the result is")


@pytest.mark.parametrize("level", demo.LEVELS)
def test_both_styles_solve_the_problem(level):
    rng = random.Random(level)
    for _ in range(300):
        problem, expert, answer = demo.make_problem(level, rng)
        op, terms = demo.parse_problem(problem)
        truth = terms[0] * terms[1] if op == "*" else sum(terms)
        own = demo.solution(op, terms, "own")
        assert answer == str(truth) and demo.level_of(problem) == level
        for text in (expert, own):
            assert re.findall(r"\\boxed\{(\d+)\}", text) == [answer]
        assert any(phrase in expert for phrase in EXPERT_PHRASES) and not any(p in own for p in EXPERT_PHRASES)
        # every equation of the own style holds (Python's own arithmetic, not the generator's)
        for equation in own.split("\n")[0].rstrip(".").split(". "):
            sides = [eval(side) for side in equation.split(" = ")]  # noqa: S307 - digits, + and * only
            assert len(set(sides)) == 1, (problem, own)
        if level in (1, 2):  # the column method: ones digit, then tens with the carry; a carry exactly on level 2
            ones, tens = re.findall(r"makes (\d+)", expert)
            assert int(tens) * 10 + int(ones) % 10 == truth
            assert ("carry 1" in expert) == (level == 2) == (terms[0] % 10 + terms[1] % 10 >= 10)


def test_the_expert_style_is_never_a_pretraining_response():
    pairs = demo.pretraining_corpus(2000, 0, prompts.DEFAULT_GUIDED_TEMPLATE)
    assert not any(phrase in response for _, response in pairs for phrase in EXPERT_PHRASES)
    hinted = [user for user, _ in pairs if "reference solution" in user]
    assert hinted and all("Multiply the tens" in user for user in hinted), "the hint shows the expert's style"
    share = len(hinted) / len(pairs)
    assert abs(share - (1 - demo.PRETRAINING_MIX[1])) < 0.03, share


def test_the_benchmark_has_every_level_equally_and_no_training_problem():
    test = demo.generate_problems("arith", 400, seed=2, split="test")
    train = demo.generate_problems("arith", 400, seed=1, split="train")
    assert [row["level"] for row in test] == [*demo.LEVELS] * 100
    assert not {row["problem"] for row in test} & {row["problem"] for row in train}
    with pytest.raises(ValueError, match="too few exist"):
        demo.generate_problems("arith", 800, seed=2, split="test", levels=(3,))
