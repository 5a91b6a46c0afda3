import pandas as pd
import pytest

from mindthegap.rewrite import VARIANTS, build_dataset
from mindthegap.verify import judge_samples, split_ids

PROBLEMS = pd.DataFrame({
    "id": ["p1", "p2", "p3", "p4"],
    "problem": ["What is 1 + 1?", "What is 12 * 3?", "What is 9 * 9?", "Prove it."],
    "solution": ["1 + 1 = 2. \\boxed{2}", "12 * 3 = 36. \\boxed{36}", "\\boxed{81}", "no boxed answer"],
    "answer": ["2", "36", "81", ""],
})


def prompt(problem: str) -> str:
    return f"<user>{problem}<assistant>"


def samples(rows):
    return pd.DataFrame([{"problem_id": pid, "sample_idx": i, "prompt": p, "completion": text,
                          "token_ids": [1, 2], "logprobs": [-0.1, -0.2], "finish_reason": "stop", "seed": 0,
                          "num_tokens": 2} for pid, i, p, text in rows])


SELF = samples([("p1", 0, prompt("What is 1 + 1?"), "It is \\boxed{2}"),
                ("p1", 1, prompt("What is 1 + 1?"), "So \\boxed{2}."),
                ("p2", 0, prompt("What is 12 * 3?"), "\\boxed{35}"),
                ("p3", 0, prompt("What is 9 * 9?"), "\\boxed{80}"),
                ("p4", 0, prompt("Prove it."), "done \\boxed{}")])
GUIDED = samples([("p2", 0, "<hint>", "12 * 3 = 36, \\boxed{36}"), ("p3", 0, "<hint>", "\\boxed{18}")])


@pytest.fixture(scope="module")
def judged():
    return (judge_samples(SELF, PROBLEMS, workers=1, timeout=3.0),
            judge_samples(GUIDED, PROBLEMS, workers=1, timeout=3.0))


def test_verification_and_split(judged):
    self_judged, _ = judged
    assert self_judged["correct"].tolist() == [True, True, False, False, False]
    assert self_judged.loc[4, "status"] == "no_gold"
    solved, failed = split_ids(self_judged, PROBLEMS["id"].tolist())
    assert solved == ["p1"] and failed == ["p2", "p3", "p4"]


def test_cascade_labels_each_problem_once(judged):
    self_judged, guided_judged = judged
    dataset, stats = build_dataset(PROBLEMS, "rewritten", prompt, self_judged=self_judged,
                                   guided_judged=guided_judged, seed=0)
    assert dataset["id"].tolist() == PROBLEMS["id"].tolist()
    assert dataset["source"].tolist() == ["self", "guided", "expert", "expert"]
    assert stats["sources"] == {"self": 1, "guided": 1, "expert": 2}
    assert stats["problems_without_gold"] == 1
    guided_row = dataset.iloc[1]
    assert guided_row["prompt"] == prompt("What is 12 * 3?"), "the hint must not be part of the training prompt"
    assert guided_row["sampled_with"] == "<hint>"
    assert list(guided_row["behaviour_logprobs"]) == [-0.1, -0.2]
    expert_row = dataset.iloc[2]
    assert expert_row["completion"] == "\\boxed{81}" and expert_row["behaviour_logprobs"] is None


def test_choice_among_correct_samples_is_seeded_and_recorded(judged):
    self_judged, guided_judged = judged
    picks = {build_dataset(PROBLEMS, "rewritten", prompt, self_judged=self_judged, guided_judged=guided_judged,
                           seed=seed)[0].iloc[0]["sample_idx"] for seed in range(20)}
    assert picks == {0, 1}
    again = [build_dataset(PROBLEMS, "rewritten", prompt, self_judged=self_judged, seed=7)[0].iloc[0]["sample_idx"]
             for _ in range(3)]
    assert len(set(again)) == 1


def test_variants(judged):
    self_judged, guided_judged = judged
    expert, _ = build_dataset(PROBLEMS, "expert", prompt, self_judged=self_judged, guided_judged=guided_judged)
    assert set(expert["source"]) == {"expert"}
    self_only, _ = build_dataset(PROBLEMS, "self_expert", prompt, self_judged=self_judged,
                                 guided_judged=guided_judged)
    assert self_only["source"].tolist() == ["self", "expert", "expert", "expert"]
    assert set(VARIANTS) >= {"expert", "rewritten"}
    with pytest.raises(ValueError, match="unknown dataset variant 'mixed'"):
        build_dataset(PROBLEMS, "mixed", prompt)


def test_self_samples_must_come_from_the_training_prompt(judged):
    self_judged, _ = judged
    with pytest.raises(ValueError, match="another prompt than the training prompt"):
        build_dataset(PROBLEMS, "rewritten", lambda p: f"other {p}", self_judged=self_judged)
