"""The paper's config as a new user meets it: `--config` overrides on top of it, and its hub problems load."""

import os
import subprocess

import pandas as pd

from helpers import ROOT, SNAKEMAKE, harness_benchmarks, load_config, paper_config, plan_jobs


def test_config_overrides_apply_on_top_of_the_papers_config(tmp_path):
    root = harness_benchmarks()
    jobs = plan_jobs(None, tmp_path, overrides={"benchmark_root": str(root)})
    paths = {job.params.spec["path"] for job in jobs if job.rule.name == "prepare_benchmark"}
    assert paths == {f"{root}/{b}/test.jsonl" for b in ("math500", "minerva_math", "olympiadbench", "aime24", "amc23")}
    assert {job.wildcards["model"] for job in jobs if job.rule.name == "train"} == {
        "qwen25_math_7b", "llama31_8b_instruct"}  # the paper's models, not replaced by the override


def test_readme_dry_run_with_a_config_override():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([SNAKEMAKE, "-n", "--profile", "profiles/slurm", "--config",
                             f"benchmark_root={harness_benchmarks()}", "--quiet", "rules"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]


def test_hub_problems_load_through_the_rule(tmp_path):
    """prepare_problems with the paper's problems spec, the hub id replaced by a local directory laid out like
    AI-MO/NuminaMath-CoT: the same datasets.load_dataset call. (The output name is not a hub subset.)"""
    from mindthegap.rehearsal import numina_like_rows, write_hub_dataset

    dataset = write_hub_dataset(tmp_path / "AI-MO" / "NuminaMath-CoT", numina_like_rows(6))
    result = subprocess.run([SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
                             "--cores", "1", "--config", f"problems={{path: '{dataset}'}}", "--",
                             "results/problems/numina_cot_50k.parquet"],
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    problems = pd.read_parquet(tmp_path / "results/problems/numina_cot_50k.parquet")
    assert len(problems) == 6 and problems["answer"].str.len().gt(0).all()
    assert problems["problem"].tolist() == [row["problem"] for row in numina_like_rows(6)]


def test_local_data_files_are_declared_inputs(tmp_path):
    """An edited benchmark or problems file reruns its stage: Snakemake sees the file itself as the input."""
    root = harness_benchmarks()
    jobs = plan_jobs(paper_config(), tmp_path)
    inputs = {job.wildcards["bench"]: [str(path) for path in job.input]
              for job in jobs if job.rule.name == "prepare_benchmark"}
    assert inputs == {bench: [f"{root}/{bench}/test.jsonl"] for bench in inputs} and len(inputs) == 5


def test_hub_benchmarks_load_through_the_hub_call(tmp_path):
    """A benchmark from the hub (`source: hf`): the same datasets.load_dataset call, here on a local directory
    laid out like a hub dataset with a named subset; `fields:` maps its columns."""
    from mindthegap.data import load_benchmark

    data = tmp_path / "org" / "bench" / "main"
    data.mkdir(parents=True)
    pd.DataFrame({"uid": ["a", "b"], "statement": [" What is 1+1? ", "Name 2+2."], "answer": ["2", "4"]}).to_parquet(
        data / "test-00000-of-00001.parquet")
    (tmp_path / "org" / "bench" / "README.md").write_text(
        "---\nconfigs:\n- config_name: main\n  data_files:\n  - split: test\n    path: main/test-*\n---\n")
    spec = {"source": "hf", "path": str(tmp_path / "org" / "bench"), "subset": "main", "split": "test",
            "gold": "answer", "fields": {"problem": "statement", "id": "uid"}}
    frame = load_benchmark(spec, "toy")
    assert frame["id"].tolist() == ["toy-a", "toy-b"]
    assert frame["problem"].tolist() == ["What is 1+1?", "Name 2+2."]  # stripped, as the harness's parse_question
    assert frame["answer"].tolist() == ["2", "4"]


def test_the_papers_config_plans_before_its_benchmark_files_are_in_place(tmp_path):
    """`snakemake -n --profile profiles/slurm` as shipped: data/benchmarks/ does not exist yet."""
    jobs = plan_jobs(load_config("config.yaml"), tmp_path)
    prepares = [job for job in jobs if job.rule.name == "prepare_benchmark"]
    assert len(prepares) == 5 and all(not job.input for job in prepares)
    assert sum(job.rule.name == "train" for job in jobs) == 8

