"""Evaluation shards by work: one model load per job for every benchmark, per-benchmark outputs, resumable."""

import subprocess

import pandas as pd
import pytest
import yaml

from helpers import ROOT, SNAKEMAKE, load_config
from mindthegap import demo
from mindthegap.evaluation import sample_benchmarks, union_shard
from mindthegap.generation import SamplingParams, load_backend
from mindthegap.sampling import prompt_renderer


def benchmark(name: str, n: int, seed: int) -> pd.DataFrame:
    frame = pd.DataFrame(demo.generate_problems("arith", n, seed=seed, split="test"))
    return frame.assign(id=[f"{name}-{i}" for i in range(n)])


BENCHMARKS = {"long": benchmark("long", 10, 1), "short": benchmark("short", 3, 2), "mid": benchmark("mid", 7, 3)}


def test_each_shard_holds_its_share_of_every_benchmark():
    shards = [union_shard(BENCHMARKS, index, 2) for index in range(2)]
    for name, frame in BENCHMARKS.items():
        held = [shard.loc[shard["benchmark"] == name, "id"].tolist() for shard in shards]
        assert sorted(held[0] + held[1]) == sorted(frame["id"])  # a partition of the benchmark
        assert abs(len(held[0]) - len(held[1])) <= 1  # balanced
    first = shards[0]
    assert set(first["benchmark"].head(5)) == set(BENCHMARKS)  # benchmarks are interleaved through the stream
    assert list(first.columns) == [*BENCHMARKS["long"].columns, "benchmark"]


def test_ids_repeated_across_benchmarks_are_refused():
    with pytest.raises(ValueError, match=r"problem id 'long-0' appears in several benchmarks \(copy, long\)"):
        union_shard({"long": BENCHMARKS["long"], "copy": BENCHMARKS["long"]}, 0, 1)


class Interrupted(RuntimeError):
    pass


def test_one_backend_samples_every_benchmark_and_resumes(tiny_model_dir, tmp_path):
    real = load_backend("transformers", str(tiny_model_dir), batch_size=8)
    render = prompt_renderer({"kind": "eval", "template": "chat"}, str(tiny_model_dir))
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=6, seed=0)
    outputs = {name: tmp_path / f"{name}.parquet" for name in BENCHMARKS}
    work = tmp_path / "work" / "1-of-2.parquet"
    loads, calls = [], []

    class Recording:  # the real backend, counting its loads and its calls; may die like a killed job
        def __init__(self, fail_after=None):
            loads.append(1)
            self.fail_after = fail_after

        def __getattr__(self, name):
            return getattr(real, name)

        def sample(self, prompts, *args):
            calls.append(len(prompts))
            if self.fail_after is not None and len(calls) > self.fail_after:
                raise Interrupted("SIGKILL stand-in")
            return real.sample(prompts, *args)

    with pytest.raises(Interrupted):  # killed after its first chunk
        sample_benchmarks(BENCHMARKS, 0, 2, render, lambda: Recording(fail_after=1), params, outputs, work,
                          chunk_size=4)
    loads.clear()
    calls.clear()
    summary = sample_benchmarks(BENCHMARKS, 0, 2, render, Recording, params, outputs, work, chunk_size=4)
    assert loads == [1], "one model load for all benchmarks"
    assert calls == [4, 3], "11 problems in chunks of 4: the first chunk is not sampled again"
    assert summary["per_benchmark"] == {"long": 5, "short": 2, "mid": 4}
    for name, frame in BENCHMARKS.items():
        samples = pd.read_parquet(outputs[name])
        assert set(samples["benchmark"]) == {name}
        assert set(samples["problem_id"]) == set(frame["id"].iloc[0::2])  # shard 1 of 2 of this benchmark
        assert len(samples) == 2 * samples["problem_id"].nunique()
    assert not work.exists() and not work.with_name(work.name + ".parts").exists()


def test_workflow_evaluates_two_benchmarks_with_one_job_per_shard(tiny_model_dir, tmp_path):
    """The rules, the script and the judge: per-benchmark metrics from shards that each cover both benchmarks."""
    cfg = load_config("demo.yaml")
    cfg["models"] = {"tiny": {"path": str(tiny_model_dir), "eval_template": "chat", "stop_tokens": ["<|im_end|>"]}}
    cfg["benchmarks"] = {name: {"source": "synthetic", "task": "arith", "split": "test", "n": n, "seed": n,
                                "gold": "answer"} for name, n in (("first", 3), ("second", 2))}
    cfg["methods"] = {"base": {"label": "Base"}}
    cfg["rewrite"].update(rounds=1, round_methods=[])  # the demo's round 2 retrains DR+DFT, not planned here
    cfg["evaluation"].update(shards=2, n=2, max_new_tokens=6)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    targets = [f"results/demo/eval/tiny/base/{name}/metrics.json" for name in cfg["benchmarks"]]
    result = subprocess.run([SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--configfile", "config.yaml",
                             "--cores", "2", "--quiet", "rules", "--", *targets], cwd=tmp_path, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    shards = sorted(path.relative_to(tmp_path / "results/demo/eval/tiny/base/samples").as_posix()
                    for path in (tmp_path / "results/demo/eval/tiny/base/samples").glob("*/*.parquet"))
    assert shards == ["1-of-2/first.parquet", "1-of-2/second.parquet", "2-of-2/first.parquet", "2-of-2/second.parquet"]
    assert len(list((tmp_path / "results/demo/logs/evaluate_sample/tiny/base").glob("*.log"))) == 2  # 2 jobs
    for name, n in (("first", 3), ("second", 2)):
        verdicts = pd.read_parquet(tmp_path / f"results/demo/eval/tiny/base/{name}/verdicts.parquet")
        assert len(verdicts) == 2 * n and set(verdicts["benchmark"]) == {name}
