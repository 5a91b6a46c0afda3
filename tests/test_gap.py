"""The policy-gap stage (mindthegap.gap): per-row scores against a direct forward pass of the model, the log-ratio
to the behaviour policy (~0 for a self row sampled on the training prompt, not for a guided row sampled on the hint
prompt), the per-source summary against pandas, resuming from finished chunks, and the context window."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from mindthegap import gap, prompts
from mindthegap.generation import SamplingParams
from mindthegap.generation.hf import TransformersBackend
from mindthegap.io import DataError

FP32_TOLERANCE = 1e-4  # tests/test_scoring.py: cached generation vs a full forward pass, fp32 on the CPU
PROBLEMS = pd.DataFrame({
    "id": ["p0", "p1", "p2", "p3", "p4"],
    "problem": ["What is 1 + 2?", "What is 12 + 30?", "What is 7 * 8?", "What is 3 + 4 + 5?", "What is 9 - 2?"],
    "solution": ["1 + 2 = 3. The answer is \\boxed{3}.", "12 + 30 = 42, so \\boxed{42}.", "7 * 8 = \\boxed{56}",
                 "3 + 4 = 7 and 7 + 5 = 12: \\boxed{12}.", "9 - 2 = \\boxed{7}"],
})
SOURCES = ["self", "guided", "expert", "self", "guided"]


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    return TransformersBackend(str(tiny_model_dir), batch_size=4, dtype="float32", device="cpu")


@pytest.fixture(scope="module")
def dataset(backend):
    """Rows as `rewrite` builds them: self rows sampled on the training prompt, guided rows on the hint prompt
    (temperature 1, top-p 1), an expert row with the solution's text; every row's prompt is the training prompt."""
    tokenizer = backend.tokenizer
    rows = []
    for problem, source in zip(PROBLEMS.to_dict("records"), SOURCES):
        train_prompt = prompts.render("chat", problem["problem"], tokenizer)
        row = {"id": problem["id"], "prompt": train_prompt, "completion": problem["solution"],
               "completion_token_ids": None, "behaviour_logprobs": None, "source": source, "sample_idx": -1,
               "sampled_with": None}
        if source != "expert":
            sampled_with = train_prompt if source == "self" else prompts.render_guided(
                problem["problem"], problem["solution"], tokenizer, prompts.DEFAULT_GUIDED_TEMPLATE)
            completion = backend.sample([sampled_with], SamplingParams(n=1, max_new_tokens=12, seed=len(rows)))[0][0]
            row.update(completion=completion.text, completion_token_ids=np.asarray(completion.token_ids),
                       behaviour_logprobs=np.asarray(completion.logprobs), sample_idx=0, sampled_with=sampled_with)
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def scored(dataset, backend, tmp_path_factory):
    return gap.run_policy_gap(dataset, PROBLEMS, lambda: backend, backend.tokenizer, model="tiny",
                              scored_with={"model": "tiny", "revision": None, "backend": "transformers"},
                              work=tmp_path_factory.mktemp("gap") / "work", chunk_size=2)


def direct_logprobs(model, tokenizer, prompt: str, completion: list[int]) -> list[float]:
    """log softmax of one plain forward pass over prompt + completion, at the completion's tokens."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids + completion])).logits[0, len(prompt_ids) - 1:-1]
    return torch.log_softmax(logits.float(), -1).gather(1, torch.tensor(completion)[:, None]).squeeze(1).tolist()


def trained_ids(row, tokenizer) -> list[int]:
    """The response as the paper trains on it: sampled ids, else the solution's tokens; then EOS. A sample that
    ends on another special token (a random model may draw the pad token last) ends with EOS instead."""
    eos = tokenizer.eos_token_id
    if row["completion_token_ids"] is None:
        return tokenizer(row["completion"], add_special_tokens=False)["input_ids"] + [eos]
    ids = [int(t) for t in row["completion_token_ids"]]
    if ids[-1] == eos:
        return ids
    return (ids[:-1] if ids[-1] in tokenizer.all_special_ids else ids) + [eos]


def test_rows_match_a_direct_forward_pass(dataset, scored, tiny_model_dir):
    rows, _ = scored
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert rows.columns.tolist() == gap.ROW_COLUMNS and rows["id"].tolist() == dataset["id"].tolist()
    assert rows["source"].tolist() == SOURCES
    for row, got, solution in zip(dataset.to_dict("records"), rows.to_dict("records"), PROBLEMS["solution"]):
        kept_ids = trained_ids(row, tokenizer)
        expert_ids = tokenizer(solution, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        for prefix, ids in (("kept", kept_ids), ("expert", expert_ids)):
            expected = direct_logprobs(model, tokenizer, row["prompt"], ids)
            mean = float(np.mean(expected))
            assert got[f"{prefix}_tokens"] == len(ids)
            assert got[f"{prefix}_logprob_sum"] == pytest.approx(sum(expected), abs=FP32_TOLERANCE * len(ids))
            assert got[f"{prefix}_logprob_mean"] == pytest.approx(mean, abs=FP32_TOLERANCE)
            assert got[f"{prefix}_perplexity"] == pytest.approx(math.exp(-mean), rel=FP32_TOLERANCE)
        if row["source"] == "expert":  # kept == expert, and nothing is known of its behaviour policy
            assert got["kept_logprob_sum"] == got["expert_logprob_sum"] and len(got["logratio"]) == 0
            assert math.isnan(got["logratio_mean"]) and math.isnan(got["logratio_var"])
            continue
        # an EOS the sampler never drew (appended, or in place of a last special token) has no log-ratio
        known = len(kept_ids) - (int(row["completion_token_ids"][-1]) != tokenizer.eos_token_id)
        stored = list(row["behaviour_logprobs"])[:known]
        ratio = np.asarray(direct_logprobs(model, tokenizer, row["prompt"], kept_ids)[:len(stored)]) - stored
        assert np.allclose(got["logratio"], ratio, atol=FP32_TOLERANCE)
        assert got["logratio_mean"] == pytest.approx(ratio.mean(), abs=FP32_TOLERANCE)
        assert got["logratio_var"] == pytest.approx(ratio.var(), abs=FP32_TOLERANCE)
    assert not rows["kept_truncated"].any() and not rows["expert_truncated"].any()


def test_logratio_is_zero_on_the_sampling_prompt_and_not_on_the_hint_prompt(scored):
    """A self row was sampled on the training prompt: the base model there IS its behaviour policy. A guided row
    was sampled on the hint prompt: the training prompt changes its tokens' log-probs."""
    rows, _ = scored
    ratios = {source: np.concatenate(list(rows.loc[rows["source"] == source, "logratio"]))
              for source in ("self", "guided")}
    print({source: (len(r), float(np.abs(r).max())) for source, r in ratios.items()})
    assert np.abs(ratios["self"]).max() <= FP32_TOLERANCE
    assert np.abs(ratios["guided"]).max() > 100 * FP32_TOLERANCE


def test_summary_matches_pandas(scored):
    rows, summary = scored
    assert summary["model"] == "tiny" and summary["scored_with"]["backend"] == "transformers"
    assert set(summary["sources"]) == {"self", "guided", "expert", "all"}
    for source, entry in summary["sources"].items():
        part = rows if source == "all" else rows[rows["source"] == source]
        assert entry["rows"] == len(part)
        for prefix in ("kept", "expert"):
            for metric in gap.METRICS:
                values = part[f"{prefix}_{metric}"].astype(float)
                expected = {"mean": values.mean(), "median": values.median(), "q10": values.quantile(0.1),
                            "q25": values.quantile(0.25), "q75": values.quantile(0.75), "q90": values.quantile(0.9)}
                assert entry[prefix][metric] == pytest.approx(expected), (source, prefix, metric)
        if source == "expert":
            assert "logratio" not in entry
            continue
        tokens = pd.Series(np.concatenate(list(part["logratio"])))
        assert entry["logratio"] == pytest.approx({
            "tokens": len(tokens), "mean": tokens.mean(), "var": tokens.var(ddof=0), "std": tokens.std(ddof=0),
            "q05": tokens.quantile(0.05), "q25": tokens.quantile(0.25), "median": tokens.median(),
            "q75": tokens.quantile(0.75), "q95": tokens.quantile(0.95)})


def test_a_source_without_rows_is_present_with_nulls(scored):
    rows, _ = scored
    summary = gap.summarize(rows[rows["source"] != "guided"], "tiny", {})
    guided = summary["sources"]["guided"]
    assert guided["rows"] == 0 and guided["logratio"]["tokens"] == 0 and guided["logratio"]["var"] is None
    assert all(value is None for metric in gap.METRICS for value in guided["kept"][metric].values())
    assert summary["sources"]["self"]["rows"] == 2


def test_a_killed_run_resumes_from_its_finished_chunks(dataset, backend, scored, tmp_path):
    """A backend that dies at its second call leaves one finished chunk; the rerun scores only the others, and the
    rows equal an uninterrupted run's. Other settings (resume key) discard the chunks."""
    calls = []

    class Dying:
        def __init__(self, limit):
            self.limit, self.max_model_len = limit, backend.max_model_len
            self.prompt_lengths = backend.prompt_lengths

        def score(self, prompts_, completions):
            calls.append(len(prompts_))
            if len(calls) > self.limit:
                raise RuntimeError("killed")
            return backend.score(prompts_, completions)

    work = tmp_path / "work"
    with pytest.raises(RuntimeError, match="killed"):
        gap.run_policy_gap(dataset, PROBLEMS, lambda: Dying(1), backend.tokenizer, model="tiny", scored_with={},
                           work=work, chunk_size=2, resume_key={"model": "a"})
    assert sorted(p.name for p in work.glob("part-*.parquet")) == ["part-000000.parquet"]
    calls.clear()
    rows, _ = gap.run_policy_gap(dataset, PROBLEMS, lambda: Dying(99), backend.tokenizer, model="tiny",
                                 scored_with={}, work=work, chunk_size=2, resume_key={"model": "a"})
    assert len(calls) == 2, "only the two unfinished chunks are scored again"
    assert not work.exists()
    pd.testing.assert_frame_equal(rows, scored[0])
    with pytest.raises(RuntimeError, match="killed"):
        gap.run_policy_gap(dataset, PROBLEMS, lambda: Dying(1), backend.tokenizer, model="tiny", scored_with={},
                           work=work, chunk_size=2, resume_key={"model": "a"})
    calls.clear()
    gap.run_policy_gap(dataset, PROBLEMS, lambda: Dying(99), backend.tokenizer, model="tiny", scored_with={},
                       work=work, chunk_size=2, resume_key={"model": "b"})
    assert len(calls) == 3, "made under another key: every chunk again"


def test_a_response_longer_than_the_window_is_scored_on_its_start(dataset, tiny_model_dir, scored, tmp_path):
    short = TransformersBackend(str(tiny_model_dir), batch_size=4, dtype="float32", device="cpu",
                                max_model_len=40)
    rows, _ = gap.run_policy_gap(dataset, PROBLEMS, lambda: short, short.tokenizer, model="tiny", scored_with={},
                                 work=tmp_path / "work")
    room = 40 - 1 - np.asarray(short.prompt_lengths(dataset["prompt"].tolist()))
    full = scored[0]
    for prefix in ("kept", "expert"):
        cut = full[f"{prefix}_tokens"].to_numpy() > room
        assert cut.any() and (rows[f"{prefix}_truncated"].to_numpy() == cut).all()
        assert (rows[f"{prefix}_tokens"].to_numpy() == np.minimum(full[f"{prefix}_tokens"], room)).all()


def test_checkpoint_shift_against_the_base_rows(scored):
    rows, _ = scored
    moved = rows.assign(kept_logprob_mean=rows["kept_logprob_mean"] + 0.5)
    shift = gap.checkpoint_shift(moved, rows.iloc[::-1])  # matched by id, whatever the order
    assert shift["kept_logprob_mean_delta"].to_numpy() == pytest.approx(0.5)
    assert shift["expert_logprob_mean_delta"].to_numpy() == pytest.approx(0.0)
    summary = gap.checkpoint_summary(moved, shift, "tiny", "dr_dft", {})
    assert summary["method"] == "dr_dft" and summary["sources"]["self"]["kept_delta"]["mean"] == pytest.approx(0.5)


def test_a_row_without_its_problem_is_named(dataset):
    with pytest.raises(DataError, match=r"rewritten.parquet: 1 rows have no problem .*'p4'"):
        gap.with_solutions(dataset, PROBLEMS[PROBLEMS["id"] != "p4"], "rewritten.parquet")


def test_a_prompt_that_fills_the_window_gets_no_scores(dataset, backend, tiny_model_dir, tmp_path):
    lengths = backend.prompt_lengths(dataset["prompt"].tolist())
    window = min(lengths) + 1  # the shortest prompt leaves no token of room (vLLM needs one to spare)
    tight = TransformersBackend(str(tiny_model_dir), dtype="float32", device="cpu", max_model_len=window)
    rows, summary = gap.run_policy_gap(dataset, PROBLEMS, lambda: tight, tight.tokenizer, model="tiny",
                                       scored_with={}, work=tmp_path / "work")
    assert (rows["kept_tokens"] == 0).all() and rows["kept_logprob_mean"].isna().all()
    assert rows["kept_truncated"].all() and summary["sources"]["all"]["kept"]["logprob_mean"]["mean"] is None
