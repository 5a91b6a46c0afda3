import json

import numpy as np
import pandas as pd
import pytest

from mindthegap.io import DataError
from mindthegap.rewrite import VARIANTS, build_dataset, build_dataset_from_shards
from mindthegap.sampling import PROMPT_TOO_LONG
from mindthegap.verify import JudgedShards, judge_samples, split_ids, split_shards

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


def with_finish(frame, finish_by_row):
    frame = frame.copy()
    for row, finish in finish_by_row.items():
        frame.loc[row, "finish_reason"] = finish
    return frame


def test_a_sample_cut_at_the_length_limit_is_never_a_training_row():
    """p1's correct samples were both cut: p1 is not solved (it goes to guided re-solving), never a self row, and
    the cut samples are counted in the stats."""
    self_cut = with_finish(SELF, {0: "length", 1: "length"})
    self_judged = judge_samples(self_cut, PROBLEMS, workers=1, timeout=3.0)
    assert self_judged["correct"].tolist()[:2] == [True, True], "cut or not, the answer is right"
    solved, failed = split_ids(self_judged, PROBLEMS["id"].tolist())
    assert solved == [] and failed == ["p1", "p2", "p3", "p4"]
    guided_cut = judge_samples(with_finish(GUIDED, {0: "length"}), PROBLEMS, workers=1, timeout=3.0)
    dataset, stats = build_dataset(PROBLEMS, "rewritten", prompt, self_judged=self_judged, guided_judged=guided_cut)
    assert dataset["source"].tolist() == ["expert"] * 4
    assert stats["self_samples"]["correct_but_truncated"] == 2 and stats["self_samples"]["truncated"] == 2
    assert stats["self_samples"]["usable"] == 0
    assert stats["guided_samples"]["correct_but_truncated"] == 1


def test_a_prompt_too_long_counts_as_failed_with_its_reason():
    too_long = with_finish(SELF, {2: PROMPT_TOO_LONG})
    too_long.loc[2, "completion"] = ""
    judged = judge_samples(too_long, PROBLEMS, workers=1, timeout=3.0)
    assert judged.loc[2, "status"] == PROMPT_TOO_LONG and not judged.loc[2, "correct"]
    _, stats = build_dataset(PROBLEMS, "rewritten", prompt, self_judged=judged)
    assert stats["self_samples"]["prompt_too_long_problems"] == 1 and stats["self_samples"]["samples"] == 4


def write_shards(frame, directory, count):
    paths = []
    for index, part in enumerate(np.array_split(np.arange(len(frame)), count)):
        path = directory / f"{index}.parquet"
        frame.iloc[part].to_parquet(path, index=False, row_group_size=2)
        paths.append(str(path))
    return paths


def test_shards_give_the_dataset_of_whole_frames(judged, tmp_path):
    self_judged, guided_judged = judged
    (tmp_path / "self").mkdir()
    (tmp_path / "guided").mkdir()
    self_paths = write_shards(self_judged, tmp_path / "self", 2)
    guided_paths = write_shards(guided_judged, tmp_path / "guided", 1)
    whole, whole_stats = build_dataset(PROBLEMS, "rewritten", prompt, self_judged=self_judged,
                                       guided_judged=guided_judged, seed=3)
    sharded, sharded_stats = build_dataset_from_shards(PROBLEMS, "rewritten", prompt, self_paths=self_paths,
                                                       guided_paths=guided_paths, seed=3)
    pd.testing.assert_frame_equal(whole.astype(str), sharded.astype(str))
    assert whole_stats == sharded_stats
    assert split_shards(self_paths, PROBLEMS["id"].tolist()) == split_ids(self_judged, PROBLEMS["id"].tolist())


def test_shard_rows_are_read_by_label_across_files(judged, tmp_path):
    self_judged, _ = judged
    shards = JudgedShards(write_shards(self_judged, tmp_path, 2))
    assert shards.columns(["problem_id"])["problem_id"].tolist() == self_judged["problem_id"].tolist()
    rows = shards.rows([4, 0, 3], ["completion", "token_ids"])
    assert {label: row["completion"] for label, row in rows.items()} == {
        label: self_judged.loc[label, "completion"] for label in (0, 3, 4)}
    with pytest.raises(DataError, match="no column"):
        shards.columns(["problem_id", "nonexistent"])


MEMORY_PROBE = """
import json, sys
import pyarrow as pa
from mindthegap.rewrite import build_dataset_from_shards
from mindthegap.verify import split_shards
import pandas as pd
paths, problems = json.loads(sys.argv[1]), pd.read_parquet(sys.argv[2])
split_shards(paths, problems["id"].tolist())
build_dataset_from_shards(problems, "self_expert", lambda p: "prompt " + p, self_paths=paths)
print(pa.default_memory_pool().max_memory())
"""


def test_split_and_rewrite_read_only_the_columns_they_need(tmp_path):
    """On shards whose token lists take 128 MB, the peak of Arrow memory stays far below that: the large columns
    are read only for the kept rows, a batch of rows at a time (reading them whole peaks above 128 MB)."""
    import subprocess
    import sys

    import pyarrow as pa
    import pyarrow.parquet as pq

    problems, n, length = 1000, 4, 2000
    rows = problems * n
    offsets = pa.array(np.arange(rows + 1) * length, pa.int32())
    table = pa.table({
        "problem_id": [f"p{i // n}" for i in range(rows)], "sample_idx": [i % n for i in range(rows)],
        "prompt": [f"prompt problem {i // n}" for i in range(rows)], "completion": ["\\boxed{1}"] * rows,
        "token_ids": pa.ListArray.from_arrays(offsets, pa.array(np.ones(rows * length, dtype=np.int64))),
        "logprobs": pa.ListArray.from_arrays(offsets, pa.array(np.zeros(rows * length))),
        "finish_reason": ["stop"] * rows, "correct": [i % (10 * n) == 1 for i in range(rows)],  # 100 kept
        "status": ["correct"] * rows,
    })
    heavy = table.column("token_ids").nbytes + table.column("logprobs").nbytes
    paths = []
    for part in range(2):
        paths.append(str(tmp_path / f"{part}.parquet"))
        pq.write_table(table.slice(part * rows // 2, rows // 2), paths[-1], row_group_size=512)
    pd.DataFrame({"id": [f"p{i}" for i in range(problems)], "problem": [f"problem {i}" for i in range(problems)],
                  "solution": ["\\boxed{1}"] * problems, "answer": ["1"] * problems}).to_parquet(
        tmp_path / "problems.parquet")
    probe = subprocess.run([sys.executable, "-c", MEMORY_PROBE, json.dumps(paths), str(tmp_path / "problems.parquet")],
                           capture_output=True, text=True, check=True)
    peak = int(probe.stdout.split()[-1])
    assert heavy > 120e6
    assert peak < heavy / 2, f"Arrow peaked at {peak / 1e6:.0f} MB for {heavy / 1e6:.0f} MB of token lists"


def test_evaluation_judges_the_text_cut_at_the_harness_stop_words():
    from mindthegap.prompts import HARNESS_STOP_STRINGS
    from mindthegap.verify import cut_at_stop_strings

    assert cut_at_stop_strings("so \\boxed{3}.</s>User: next \\boxed{4}", HARNESS_STOP_STRINGS) == "so \\boxed{3}."
    samples = pd.DataFrame({"problem_id": ["p", "p"], "sample_idx": [0, 1], "finish_reason": ["stop", "stop"],
                            "completion": [" \\boxed{3}</s>\\boxed{4}", "\\boxed{4}"]})
    gold = pd.DataFrame({"id": ["p"], "answer": ["3"]})
    judged = judge_samples(samples, gold, workers=1, timeout=3, stop_strings=HARNESS_STOP_STRINGS)
    assert judged["correct"].tolist() == [True, False]
    assert judge_samples(samples, gold, workers=1, timeout=3)["correct"].tolist() == [False, False]
