"""The rehearsal: the paper's own config end to end on this machine (`make rehearsal`), then what it must show.

Only what cannot exist here differs from config/config.yaml (mindthegap.rehearsal): tiny random weights under the
real tokenizers and chat templates of Qwen2.5-Math-7B and Llama-3.1-8B-Instruct, a local NuminaMath-CoT laid out like
the hub's, a few problems of each real benchmark, the transformers backend, small sizes.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

from helpers import ROOT, paper_config, plan_jobs

pytestmark = pytest.mark.slow

QWEN, LLAMA = "qwen25_math_7b", "llama31_8b_instruct"
EOS = {QWEN: 151643, LLAMA: 128009}  # <|endoftext|> (the base model's EOS), <|eot_id|>
STOP_IDS = {QWEN: [151643, 151645], LLAMA: [128001, 128008, 128009]}  # harness / vLLM's generation-config EOS

# The prompts of the paper's harness (../shared/notes/eval-harness.md), written out here independently of
# mindthegap.prompts: qwen-boxed for Qwen2.5-Math-7B; math_eval.py's fixed string for Llama-3.1-8B-Instruct.
HARNESS_PROMPTS = {
    QWEN: ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{q}\nPlease reason step "
           "by step, and put your final answer within \\boxed{{}}.<|im_end|>\n<|im_start|>assistant\n"),
    LLAMA: ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            "Today Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n{q}\nLet's think step "
            "by step and output the final answer within \\boxed{{}}.<|eot_id|><|start_header_id|>assistant"
            "<|end_header_id|>\n\n"),
}


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory, shared) -> tuple[Path, dict]:
    from mindthegap import rehearsal

    workdir = tmp_path_factory.mktemp("rehearsal")
    times = rehearsal.run(workdir, shared / "data" / "benchmarks", cores=2, extra=["--quiet", "rules"])
    print(f"rehearsal wall time: {times}")
    config = yaml.safe_load((workdir / rehearsal.RESULTS_DIR / "config.yaml").read_text())
    return workdir, config


def results(rehearsal) -> Path:
    workdir, config = rehearsal
    return workdir / config["results_dir"]


def test_config_differs_from_the_papers_only_where_it_must(rehearsal):
    _, config = rehearsal
    paper = paper_config()
    assert config["methods"] == paper["methods"] and config["benchmarks"].keys() == paper["benchmarks"].keys()
    for key, model in paper["models"].items():
        assert {k: v for k, v in config["models"][key].items() if k != "path"} == {
            k: v for k, v in model.items() if k != "path"}
        assert config["models"][key]["path"].endswith(model["path"])
    assert {k: v for k, v in config["problems"].items() if k not in ("path", "limit")} == {
        k: v for k, v in paper["problems"].items() if k not in ("path", "limit")}
    for section in ("sampling", "evaluation"):
        assert config[section]["backend"] == "transformers"


def test_every_rule_of_the_paper_grid_ran_for_both_models(rehearsal, tmp_path):
    workdir, config = rehearsal
    paper_plan = plan_jobs(paper_config(), tmp_path / "paper")
    rehearsal_plan = plan_jobs(config, tmp_path / "fresh")

    def rules_per_model(jobs):  # the prefetch aside: the rehearsal's models and data are local, there is no hub
        return {(job.rule.name, job.wildcards.get("model")) for job in jobs if job.rule.name != "prefetch"}

    assert rules_per_model(rehearsal_plan) == rules_per_model(paper_plan)
    assert {model for _, model in rules_per_model(paper_plan)} == {None, QWEN, LLAMA}
    leftover = plan_jobs(config, workdir)
    assert not leftover, f"not run: {Counter(job.rule.name for job in leftover)}"


def _eval_prompts(rehearsal, model: str) -> pd.DataFrame:
    frames = []
    for bench in paper_config()["benchmarks"]:
        verdicts = pd.read_parquet(results(rehearsal) / f"eval/{model}/base/{bench}/verdicts.parquet")
        verdicts["bench"] = bench
        frames.append(verdicts)
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("model", [QWEN, LLAMA])
def test_evaluation_prompts_are_byte_identical_to_the_harness(rehearsal, shared, model):
    """The harness passed its prompt text to vLLM, whose default tokenization adds the tokenizer's BOS (Llama 3: a
    second <|begin_of_text|>; Qwen: none). Our prompts carry that BOS in the text and are tokenized without
    special tokens, so the token ids the model was given are the harness's."""
    from transformers import AutoTokenizer

    _, config = rehearsal
    tokenizer = AutoTokenizer.from_pretrained(config["models"][model]["path"])
    vllm_bos = {QWEN: "", LLAMA: "<|begin_of_text|>"}[model]
    judged = _eval_prompts(rehearsal, model)
    for bench, group in judged.groupby("bench"):
        rows = [json.loads(line) for line in (shared / f"data/benchmarks/{bench}/test.jsonl").open()]
        limit = config["benchmarks"][bench]["limit"]
        # the harness's parse_question: the first of question/problem, stripped
        questions = [next(row[k] for k in ("question", "problem") if k in row).strip() for row in rows[:limit]]
        harness = {HARNESS_PROMPTS[model].format(q=q) for q in questions}
        assert set(group["prompt"]) == {vllm_bos + text for text in harness}, bench
        for text in harness:
            ours = group.loc[group["prompt"] == vllm_bos + text].iloc[0]
            fed = tokenizer(ours["prompt"], add_special_tokens=False)["input_ids"]
            assert fed == tokenizer(text)["input_ids"], "the ids vLLM's default tokenization gave the harness"
            assert len(fed) == ours["prompt_tokens"], "what the backend was given"
    first = judged["prompt"].iloc[0]
    print(f"{model}: {first!r} -> {tokenizer(first, add_special_tokens=False)['input_ids'][:8]}")
    assert tokenizer(first, add_special_tokens=False)["input_ids"][:3] == {
        QWEN: [151644, 8948, 198], LLAMA: [128000, 128000, 128006]}[model]


@pytest.mark.parametrize("model", [QWEN, LLAMA])
def test_sampling_stops_on_the_real_stop_ids(rehearsal, model):
    from mindthegap.generation import load_backend

    _, config = rehearsal
    cfg = config["models"][model]
    backend = load_backend("transformers", cfg["path"], revision=cfg["revision"], stop_tokens=cfg["stop_tokens"])
    assert backend.stop_ids == STOP_IDS[model]
    for phase in ("self", "guided"):
        for path in (results(rehearsal) / "samples" / model / "round1" / phase).glob("*.parquet"):
            samples = pd.read_parquet(path, columns=["token_ids", "finish_reason"])
            stopped = samples[samples["finish_reason"] == "stop"]
            assert all(ids[-1] in STOP_IDS[model] for ids in stopped["token_ids"])


@pytest.mark.parametrize("model", [QWEN, LLAMA])
def test_every_training_row_ends_with_the_models_eos(rehearsal, model):
    from transformers import AutoTokenizer

    from mindthegap.training import encode_row

    _, config = rehearsal
    tokenizer = AutoTokenizer.from_pretrained(config["models"][model]["path"])
    assert tokenizer.eos_token_id == EOS[model]
    checked = 0
    for dataset in sorted((results(rehearsal) / "datasets" / model / "round1").glob("*.parquet")):
        for row in pd.read_parquet(dataset).to_dict("records"):
            encoded = encode_row(row, tokenizer, max_length=None)
            assert encoded["labels"][-1] == EOS[model], (dataset.name, row["id"], row["source"])
            checked += 1
    assert checked >= 2 * config["problems"]["limit"]


@pytest.mark.parametrize("model", [QWEN, LLAMA])
def test_a_guided_prompt_longer_than_the_context_is_skipped_and_counted(rehearsal, model):
    """One NuminaMath stand-in solution is longer than either model's window: its guided prompt cannot fit."""
    stats = json.loads((results(rehearsal) / f"datasets/{model}/round1/rewritten.stats.json").read_text())
    assert stats["guided_samples"]["prompt_too_long_problems"] == 1
    assert stats["guided_samples"]["grader_status"]["prompt_too_long"] == rehearsal[1]["sampling"]["guided"]["n"]
    assert stats["rows"] == rehearsal[1]["problems"]["limit"], "the problem still gets its expert row"


@pytest.mark.parametrize("model", [QWEN, LLAMA])
def test_both_models_tables_exist(rehearsal, model):
    table = pd.read_csv(results(rehearsal) / f"tables/{model}.csv", index_col=0)
    labels = [spec["label"] for spec in paper_config()["methods"].values() if not spec.get("extension")]
    assert all(any(str(index).startswith(label) for index in table.index) for label in labels)
    assert (results(rehearsal) / f"tables/{model}.md").read_text().strip()

