"""The authors' released data as the dataset variant `released`: a local directory laid out like the hub's verl-style
parquet (struct column `extra_info` with `question` and `answer`, one file per model), read by the same
datasets.load_dataset call as the problems, through the rule, into the dataset contract that training encodes."""

import os
import subprocess

import pandas as pd
import pytest

from helpers import ROOT, SNAKEMAKE, load_config, paper_config, plan_jobs
from mindthegap.io import DataError
from mindthegap.released import release_spec, released_dataset
from mindthegap.rewrite import DATASET_COLUMNS

FILES = {"qwen25_math_7b": "Qwen2.5-Math-7B/model_train_datasets.parquet",
         "llama31_8b_instruct": "Meta-Llama-3.1-8B-Instruct/model_train_datasets.parquet"}


def verl_row(index: int, question: str, answer: str) -> dict:
    """One row as verl's NuminaMath preprocessing writes it (NuminaMath's `source` and `messages` kept)."""
    return {"source": "synthetic_math", "messages": [{"role": "user", "content": question}],
            "data_source": "AI-MO/NuminaMath-CoT",
            "prompt": [{"role": "user", "content": question + " Let's think step by step."}], "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": "4"},
            "extra_info": {"split": "train", "index": index, "answer": answer, "question": question}}


def write_release(root, rows_per_model=None):
    """root/xychao/MTG/<Model>/model_train_datasets.parquet: one training set per model, as the release trains."""
    repo = root / "xychao" / "MTG"
    rows_per_model = rows_per_model or {
        model: [verl_row(i, f"{model} problem {i}: what is {i} + {i}?", f"{i} + {i} = \\boxed{{{2 * i}}}")
                for i in range(3)] for model in FILES}
    for model, rows in rows_per_model.items():
        (repo / FILES[model]).parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_parquet(repo / FILES[model], index=False)
    return repo


def released_config(repo) -> dict:
    return {"source": "hf", "path": str(repo), "revision": "main", "split": "train",
            "fields": {"problem": "extra_info.question", "completion": "extra_info.answer"}, "data_files": FILES}


def test_each_model_reads_its_own_file_of_the_release(tmp_path):
    released = released_config(write_release(tmp_path))
    frame, stats = released_dataset(release_spec(released, "llama31_8b_instruct"), released["fields"],
                                    lambda problem: f"<user>{problem}<assistant>")
    assert list(frame.columns) == DATASET_COLUMNS
    assert frame["prompt"].tolist() == [f"<user>llama31_8b_instruct problem {i}: what is {i} + {i}?<assistant>"
                                        for i in range(3)]
    assert frame["completion"].tolist() == [f"{i} + {i} = \\boxed{{{2 * i}}}" for i in range(3)]
    assert frame["id"].tolist() == ["released-000000", "released-000001", "released-000002"]
    assert frame["behaviour_logprobs"].isna().all() and frame["completion_token_ids"].isna().all()
    assert (frame["source"] == "released").all() and stats["sources"] == {"released": 3}


def test_a_release_label_and_id_are_used_and_bad_rows_are_named(tmp_path):
    rows = [verl_row(7, "q7", "a7"), verl_row(9, "q9", "a9")]
    rows[0]["extra_info"]["kind"], rows[1]["extra_info"]["kind"] = "guided", "expert"
    released = released_config(write_release(tmp_path, {"qwen25_math_7b": rows}))
    fields = {**released["fields"], "source": "extra_info.kind", "id": "extra_info.index"}
    frame, _ = released_dataset(release_spec(released, "qwen25_math_7b"), fields, str)
    assert frame[["id", "source"]].values.tolist() == [["released-7", "guided"], ["released-9", "expert"]]
    rows[1]["extra_info"]["kind"], rows[0]["extra_info"]["answer"] = "mystery", " "
    released = released_config(write_release(tmp_path / "bad", {"qwen25_math_7b": rows}))
    with pytest.raises(DataError, match=r"2 bad rows\n  row 1: field 'extra_info.answer' must be non-empty text"
                                        r".*\n  row 2: source label 'mystery'"):
        released_dataset(release_spec(released, "qwen25_math_7b"), fields, str)
    with pytest.raises(DataError, match=r"row 1: missing field 'extra_info.solution'"):
        released_dataset(release_spec(released, "qwen25_math_7b"), {"completion": "extra_info.solution"}, str)


def test_the_rule_writes_rows_that_training_encodes(tmp_path):
    """rule released on a local hub-like directory; the model is a local directory with the demo's tokenizer."""
    from mindthegap import demo
    from mindthegap.training import SOURCE_CODES, encode_row
    from transformers import AutoTokenizer

    model_dir = tmp_path / "tok"
    demo.build_tokenizer(["What is 1 + 2?", "1 + 2 = 3"] * 20).save_pretrained(model_dir)
    cfg = load_config("demo.yaml")
    cfg["models"] = {"qwen25_math_7b": {"path": str(model_dir), "eval_template": "chat", "train_template": "chat"}}
    cfg["methods"]["mtg_dft"] = {"label": "DR+DFT (authors' data)", "data": "released", "loss": "dft",
                                 "extension": True}
    cfg["released"] = released_config(write_release(tmp_path))
    config_file = tmp_path / "config.yaml"
    import yaml

    config_file.write_text(yaml.safe_dump(cfg))
    target = "results/demo/datasets/qwen25_math_7b/released.parquet"
    result = subprocess.run([SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
                             "--configfile", str(config_file), "--cores", "1", "--", target],
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    frame = pd.read_parquet(tmp_path / target)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    assert frame["prompt"][0] == tokenizer.apply_chat_template(
        [{"role": "user", "content": "qwen25_math_7b problem 0: what is 0 + 0?"}], tokenize=False,
        add_generation_prompt=True)
    encoded = encode_row(frame.iloc[1].to_dict(), tokenizer, max_length=None)
    assert encoded["source_code"] == SOURCE_CODES["released"] and sum(encoded["behaviour_mask"]) == 0
    completion = [t for t, label in zip(encoded["input_ids"], encoded["labels"]) if label != -100]
    assert tokenizer.decode(completion[:-1]) == "1 + 1 = \\boxed{2}" and completion[-1] == tokenizer.eos_token_id


def test_papers_config_with_extensions_plans_the_released_methods(tmp_path):
    """`--config extensions=True`: per model, the release is prefetched once and made a dataset; the two methods
    train on it. Without extensions nothing of it is planned."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    jobs = plan_jobs({**paper_config(), "extensions": True}, tmp_path / "ext")
    released = {job.wildcards["model"]: job for job in jobs if job.rule.name == "released"}
    assert set(released) == {"qwen25_math_7b", "llama31_8b_instruct"}
    assert [str(p) for p in released["qwen25_math_7b"].input.release] == ["results/prefetch/released/qwen25_math_7b.json"]
    assert released["qwen25_math_7b"].params.fields == {"completion": "extra_info.answer",
                                                        "problem": "extra_info.question"}
    trained = {(job.wildcards["model"], job.wildcards["method"]): str(job.input.dataset)
               for job in jobs if job.rule.name == "train" and job.wildcards["method"].startswith("mtg_")}
    assert trained == {(m, f"mtg_{loss}"): f"results/datasets/{m}/released.parquet"
                       for m in released for loss in ("sft", "dft")}
    plain = plan_jobs(paper_config(), tmp_path / "plain")
    assert not any(job.rule.name == "released" or "released" in str(job.output) for job in plain)
