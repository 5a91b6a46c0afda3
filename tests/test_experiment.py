"""The miniature's parts without a run: the demo's two solution styles, the seeds' overrides, the statistics."""

import random
import re

import numpy as np
import pandas as pd
import pytest

from helpers import load_config
from mindthegap import demo, experiment, prompts

EXPERT_PHRASES = ("Add the ones", "Multiply the", "Start with", "So the result is")


@pytest.mark.parametrize("level", demo.LEVELS)
def test_both_styles_solve_the_problem(level):
    rng = random.Random(level)
    for _ in range(200):
        problem, expert, answer = demo.make_problem(level, rng)
        op, terms = demo.parse_problem(problem)
        truth = terms[0] * terms[1] if op == "*" else sum(terms)
        own = demo.solution(op, terms, "own")
        assert answer == str(truth)
        for text in (expert, own):
            assert re.findall(r"\\boxed\{(\d+)\}", text) == [answer]
        assert any(phrase in expert for phrase in EXPERT_PHRASES) and not any(p in own for p in EXPERT_PHRASES)
        if level == 2:  # the column method: ones digit, then tens with the carry, spell the answer
            ones, tens = re.findall(r"makes (\d+)", expert)
            assert int(tens) * 10 + int(ones) % 10 == truth


def test_the_expert_style_is_never_a_pretraining_response():
    pairs = demo.pretraining_corpus(400, 0, prompts.DEFAULT_GUIDED_TEMPLATE)
    assert not any(phrase in response for _, response in pairs for phrase in EXPERT_PHRASES)
    hinted = [user for user, _ in pairs if "reference solution" in user]
    assert hinted and all("Multiply the tens" in user for user in hinted), "the hint shows the expert's style"


def test_seed_zero_is_the_config_and_seeds_change_every_seed_but_the_models():
    cfg = load_config("demo.yaml")
    zero, one = experiment.seed_overrides(cfg, 0, "r0"), experiment.seed_overrides(cfg, 1, "r1")
    assert zero["problems"]["seed"] == cfg["problems"]["seed"] and zero["training"]["seeds"] == cfg["training"]["seeds"]
    assert zero["sampling"]["guided"]["seed"] == cfg["sampling"]["guided"]["seed"]
    for key in ("problems", "rewrite", "evaluation"):
        assert one[key]["seed"] != zero[key]["seed"], key
    assert one["training"]["seeds"] == [s + 1 for s in cfg["training"]["seeds"]]
    assert "demo_model" not in one and "benchmarks" not in one, "the base model and the benchmark stay fixed"
    merged = experiment.seed_config(cfg, one)
    assert merged["sampling"]["self"]["seed"] == one["sampling"]["self"]["seed"] and merged["results_dir"] == "r1"
    assert merged["sampling"]["self"]["n"] == cfg["sampling"]["self"]["n"], "merged key by key"
    assert cfg["results_dir"] != "r1", "the config itself is left as it was"


def test_paired_bootstrap_of_a_constant_difference():
    rng = np.random.default_rng(0)
    base = [rng.random(50) for _ in range(3)]
    per_seed = {"sft": base, "dr_sft": [a + 0.05 for a in base], "dft": base, "dr_dft": base}
    summary = experiment.accuracy_summary(per_seed)
    above = summary["comparisons"]["dr_sft-sft"]
    assert above["difference"] == pytest.approx(5.0)
    assert above["ci95"] == pytest.approx([5.0, 5.0]) and above["holds"] == "yes"
    assert summary["comparisons"]["dr_dft-dft"]["holds"] == "yes", "equal is 'at least'"
    low, high = summary["methods"]["sft"]["ci95"]
    assert low < summary["methods"]["sft"]["accuracy"] < high
    assert experiment.verdict([-3.0, -1.0], "at least") == "no" and experiment.verdict([-1, 2], "above") == \
        "undecided"


def test_gap_by_source():
    rows = pd.DataFrame({"source": ["self", "self", "expert"], "kept_logprob_mean": [-0.1, -0.3, -2.0],
                         "expert_logprob_mean": [-1.1, -2.3, -2.0]})
    gap = experiment.gap_by_source(rows)
    assert gap["self"] == {"rows": 2, "kept_logprob_mean": pytest.approx(-0.2),
                           "expert_logprob_mean": pytest.approx(-1.7), "logratio": pytest.approx(1.5)}
    assert gap["guided"]["rows"] == 0 and gap["guided"]["logratio"] is None
    assert gap["all"]["logratio"] == pytest.approx(1.0)


def test_later_seeds_fine_tune_the_first_seeds_model(tmp_path):
    cfg = load_config("demo.yaml")
    shared = experiment.shared_base_model(cfg, tmp_path / "seed0")
    assert shared["models"]["tiny"]["path"] == str((tmp_path / "seed0/models/tiny").resolve())
    assert "build" not in shared["models"]["tiny"] and "build" in cfg["models"]["tiny"]
    assert shared["models"]["tiny"]["eval_template"] == cfg["models"]["tiny"]["eval_template"]
