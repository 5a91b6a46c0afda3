"""The miniature experiment's parts without a run: the seeds' configs, the statistics, and the aggregation of a
results directory laid out as the workflow writes it (files built by hand with the stages' own writers)."""

import json

import numpy as np
import pandas as pd
import pytest

from helpers import ROOT, load_config, plan_jobs
from mindthegap import experiment, gap
from mindthegap.config_check import check_config
from mindthegap.io import write_json, write_parquet

SCHEMA = ROOT / "config/schema.yaml"


def experiment_cfg() -> dict:
    return experiment.experiment_config(ROOT / "config/demo.yaml", ROOT / "config/experiment.yaml")


# --- configs ---------------------------------------------------------------------------------------------------


def test_merge_is_key_by_key_and_leaves_the_config_alone():
    base = {"a": {"x": 1, "y": {"p": 1, "q": 2}}, "b": [1, 2], "c": 3}
    merged = experiment.merge(base, {"a": {"y": {"q": 5}}, "b": [9], "d": {"z": 1}})
    assert merged == {"a": {"x": 1, "y": {"p": 1, "q": 5}}, "b": [9], "c": 3, "d": {"z": 1}}
    assert base == {"a": {"x": 1, "y": {"p": 1, "q": 2}}, "b": [1, 2], "c": 3}


def test_experiment_config_is_the_demo_with_its_overlay_and_validates():
    demo, cfg = load_config("demo.yaml"), experiment_cfg()
    assert cfg["rewrite"]["rounds"] == 1 and cfg["policy_gap"]["checkpoints"] is True
    assert cfg["benchmarks"]["arith_test"]["n"] == 400 and cfg["evaluation"]["n"] == 4
    assert cfg["benchmarks"]["arith_test"]["seed"] == demo["benchmarks"]["arith_test"]["seed"], "merged key by key"
    assert cfg["methods"] == demo["methods"] and cfg["extensions"] == demo["extensions"]
    check_config(cfg, SCHEMA, ["demo.yaml + experiment.yaml"])


def test_seed_zero_is_the_config_and_later_seeds_change_every_seed_but_the_models_and_benchmark(tmp_path):
    cfg = experiment_cfg()
    zero = experiment.seed_config(cfg, 0, tmp_path)
    assert zero == {**cfg, "results_dir": str(tmp_path / "seed0")}, "seed 0 is the config as it is"
    one = experiment.seed_config(cfg, 1, tmp_path)
    assert one["results_dir"] == str(tmp_path / "seed1")
    assert one["training"]["seeds"] == [cfg["training"]["seeds"][0] + 1]
    changed = {key: one[key]["seed"] != zero[key]["seed"] for key in ("problems", "rewrite", "evaluation")}
    changed.update({phase: one["sampling"][phase]["seed"] != zero["sampling"][phase]["seed"]
                    for phase in ("self", "guided")})
    assert all(changed.values()), changed
    seeds = {experiment.seed_config(cfg, k, tmp_path)["sampling"][phase]["seed"] for k in range(3)
             for phase in ("self", "guided")}
    assert len(seeds) == 6, "self and guided sampling never share a seed across experiment seeds"
    assert one["demo_model"] == zero["demo_model"] and one["benchmarks"] == zero["benchmarks"]
    assert one["sampling"]["self"]["n"] == zero["sampling"]["self"]["n"], "merged key by key"
    # the base model: pre-trained once, in seed 0, and loaded from there
    assert zero["models"]["tiny"]["build"] == "demo"
    spec = one["models"]["tiny"]
    assert "build" not in spec and spec["path"] == str((tmp_path / "seed0/models/tiny").resolve())
    assert {k: v for k, v in spec.items() if k != "path"} == \
        {k: v for k, v in zero["models"]["tiny"].items() if k != "build"}
    assert cfg["results_dir"] != one["results_dir"] and "build" in cfg["models"]["tiny"], "config left alone"
    for seeded in (zero, one):
        check_config(seeded, SCHEMA, ["a seed's config"])


def test_a_later_seed_plans_every_file_the_aggregation_reads(tmp_path):
    """The seed's workflow (dry run) writes every file `aggregate` reads, and does not pre-train a model."""
    cfg = experiment_cfg()
    (tmp_path / "seed0/models/tiny").mkdir(parents=True)  # seed 0's pre-trained model, as after its run
    jobs = plan_jobs(experiment.seed_config(cfg, 1, tmp_path), tmp_path / "work")
    assert not {"build_demo_model", "prefetch"} & {job.rule.name for job in jobs}
    planned = {str(path) for job in jobs for path in job.output}
    needed = experiment.read_files(tmp_path, cfg, [1])
    assert len(needed) == 7 + 1 + 2 * 6  # verdicts of 7 methods, the rows, log + shift of 6 trained methods
    missing = [str(path) for path in needed
               if str(path) not in planned and not (path.name == "training_log.json" and str(path.parent) in planned)]
    assert not missing, missing


def test_a_later_seed_without_seed_zeros_model_stops_with_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="run seed 0 first"):
        experiment.run_seed(experiment_cfg(), 1, tmp_path, cores=1)
    assert not (tmp_path / "seed1.yaml").exists()


# --- statistics ------------------------------------------------------------------------------------------------


def test_bootstrap_of_one_seed_is_the_normal_interval_of_the_problem_mean():
    rng = np.random.default_rng(1)
    values = rng.integers(0, 5, size=400) / 4  # avg@4 per problem
    draws = experiment.hierarchical_bootstrap({"m": [values]}, resamples=40000)["m"]
    half = 1.959964 * values.std() / np.sqrt(len(values))
    low, high = experiment.interval(draws)
    assert low == pytest.approx(values.mean() - half, abs=0.04 * half)
    assert high == pytest.approx(values.mean() + half, abs=0.04 * half)


def test_bootstrap_over_seeds_is_wider_than_within_one_and_pairs_the_draws():
    rng = np.random.default_rng(2)
    problems = rng.random(200)
    shifted = [np.clip(problems + offset, 0, 1) for offset in (-0.2, 0.0, 0.2)]  # seeds disagree strongly
    draws = experiment.hierarchical_bootstrap({"a": shifted, "b": [s.copy() for s in shifted],
                                               "one": [shifted[1]] * 3}, resamples=4000)
    assert np.array_equal(draws["a"], draws["b"]), "identical methods: every paired difference is exactly 0"
    width = np.subtract(*experiment.interval(draws["a"])[::-1])
    assert width > 2 * np.subtract(*experiment.interval(draws["one"])[::-1])


def test_accuracy_summary_and_verdicts():
    rng = np.random.default_rng(0)
    base = [rng.random(50) for _ in range(3)]
    per_seed = {"sft": base, "dr_sft": [a + 0.05 for a in base], "dft": base, "dr_dft": [a.copy() for a in base]}
    summary = experiment.accuracy_summary(per_seed, resamples=500)
    above = summary["comparisons"]["dr_sft-sft"]
    assert above["difference"] == pytest.approx(5.0)
    assert above["ci95"] == pytest.approx([5.0, 5.0]) and above["holds"] == "yes"
    equal = summary["comparisons"]["dr_dft-dft"]
    assert equal["ci95"] == [0.0, 0.0] and equal["holds"] == "yes", "equal is 'at least'"
    sft = summary["methods"]["sft"]
    assert sft["per_seed"] == pytest.approx([100 * a.mean() for a in base])
    assert sft["ci95"][0] < sft["accuracy"] < sft["ci95"][1]
    assert experiment.verdict([-1.0, 2.0], "above") == "undecided"
    assert experiment.verdict([-3.0, -1.0], "above") == "no" and experiment.verdict([0.5, 2.0], "above") == "yes"
    assert experiment.verdict([-3.0, -1.0], "at least") == "no" and experiment.verdict([-3.0, 1.0], "at least") \
        == "yes"
    with pytest.raises(ValueError, match="unknown claim"):
        experiment.verdict([0, 1], "below")


def test_gap_by_source_against_pandas():
    rows = pd.DataFrame({"source": ["self", "guided", "self", "expert", "guided"],
                         "kept_logprob_mean": [-0.1, -0.5, -0.3, -2.0, -0.7],
                         "expert_logprob_mean": [-1.1, -1.5, -2.3, -2.0, -1.9]})
    result = experiment.gap_by_source(rows)
    rows["diff"] = rows["kept_logprob_mean"] - rows["expert_logprob_mean"]
    by_source = rows.groupby("source")[["kept_logprob_mean", "expert_logprob_mean", "diff"]].mean()
    for source in ("self", "guided", "expert"):
        assert result[source]["rows"] == (rows["source"] == source).sum()
        assert result[source]["kept_logprob_mean"] == pytest.approx(by_source.loc[source, "kept_logprob_mean"])
        assert result[source]["expert_logprob_mean"] == pytest.approx(by_source.loc[source, "expert_logprob_mean"])
        assert result[source]["logratio"] == pytest.approx(by_source.loc[source, "diff"])
    assert result["expert"]["logratio"] == 0.0
    assert result["all"]["logratio"] == pytest.approx(rows["diff"].mean()) and result["all"]["rows"] == 5
    empty = experiment.gap_by_source(rows[rows["source"] != "guided"])["guided"]
    assert empty == {"rows": 0, "kept_logprob_mean": None, "expert_logprob_mean": None, "logratio": None}


def test_weight_variance_of_a_training_log(tmp_path):
    log = {"summary": {"train_loss": 0.5}, "log_history": [
        {"loss": 1.0, "step": 2, "weight_var/self": 0.1, "weight_var/expert": 0.4, "weight_mean/self": 0.9},
        {"loss": 0.8, "step": 4, "weight_var/self": 0.3, "weight_var/expert": 0.2},
        {"train_loss": 0.9, "step": 4}]}
    path = tmp_path / "training_log.json"
    path.write_text(json.dumps(log))
    assert experiment.weight_variance(path) == {"self": pytest.approx(0.2), "expert": pytest.approx(0.3)}


# --- aggregation of a results directory as the workflow writes it ------------------------------------------------

MODEL, BENCH = "tiny", "arith_test"
# per method, per experiment seed: correct samples (of 2) for each of 4 problems
CORRECT = {"base": [[1, 0, 0, 2], [0, 1, 0, 2]], "sft": [[0, 0, 0, 2], [0, 0, 1, 1]],
           "dft": [[1, 1, 0, 2], [1, 0, 0, 2]], "dr_sft": [[2, 2, 1, 2], [2, 1, 2, 2]],
           "dr_dft": [[2, 1, 1, 2], [1, 1, 2, 2]], "dr_is": [[2, 2, 2, 2], [2, 2, 2, 1]],
           "dr_psft": [[0, 0, 0, 0], [0, 0, 0, 1]]}
SOURCES_OF_ROWS = ["self", "self", "guided", "expert"]
PROBLEMS = ["What is 12 + 34?", "What is 18 + 27?", "What is 23 * 4?", "What is 10 + 20 + 30 + 40?"]  # levels 1-4


def write_verdicts(path, correct):
    records = [{"benchmark": BENCH, "problem_id": f"{BENCH}-{p}", "sample_idx": i, "prompt": "q", "completion": "a",
                "finish_reason": "stop", "extracted": "1", "correct": i < hits, "status": "ok"}
               for p, hits in enumerate(correct) for i in range(2)]
    write_parquet(pd.DataFrame(records), path)


def gap_rows(offset):
    """rows.parquet of the policy-gap stage, with its exact schema (kept and expert per row)."""
    records = []
    for i, source in enumerate(SOURCES_OF_ROWS):
        kept = -0.2 - 0.1 * i + offset
        expert = kept if source == "expert" else -2.0 + offset
        record = {"id": f"row{i}", "source": source, "logratio": [], "logratio_mean": 0.0, "logratio_var": 0.0,
                  "kept_truncated": False, "expert_truncated": False}
        for prefix, value in (("kept", kept), ("expert", expert)):
            record.update({f"{prefix}_tokens": 5, f"{prefix}_logprob_sum": 5 * value, f"{prefix}_logprob_mean": value,
                           f"{prefix}_perplexity": float(np.exp(-value))})
        records.append(record)
    return pd.DataFrame(records)


@pytest.fixture
def fake_run(tmp_path):
    """Two seeds of the experiment's workflow, written where and as the stages write them."""
    cfg = experiment_cfg()
    for k in (0, 1):
        run_dir, training_seed = tmp_path / f"seed{k}", cfg["training"]["seeds"][0] + k
        for method, per_seed in CORRECT.items():
            run = "base" if method == "base" else f"round1/{method}/seed{training_seed}"
            write_verdicts(run_dir / f"eval/{MODEL}/{run}/{BENCH}/verdicts.parquet", per_seed[k])
        write_parquet(pd.DataFrame({"id": [f"{BENCH}-{p}" for p in range(4)], "problem": PROBLEMS,
                                    "answer": ["46", "45", "92", "100"], "solution": [""] * 4}),
                      run_dir / f"benchmarks/{BENCH}.parquet")
        base_rows = gap_rows(0.1 * k)
        gap.write_rows(base_rows, run_dir / f"policy_gap/{MODEL}/rows.parquet")
        for j, method in enumerate(m for m in CORRECT if m != "base"):
            checkpoint = f"{run_dir}/checkpoints/{MODEL}/round1/{method}/seed{training_seed}"
            history = [{"loss": 1.0, "step": 2, "weight_var/self": 0.01 * j, "weight_var/expert": 0.1 * k},
                       {"loss": 0.9, "step": 4, "weight_var/self": 0.03 * j, "weight_var/expert": 0.3 * k}]
            write_json({"summary": {}, "log_history": history}, f"{checkpoint}/training_log.json")
            moved = gap_rows(0.1 * k + 0.5 * j)  # the checkpoint raises every log-prob by 0.5 j
            write_parquet(gap.checkpoint_shift(moved, base_rows),
                          run_dir / f"policy_gap/{MODEL}/checkpoints/round1/{method}/seed{training_seed}.parquet")
    return tmp_path, cfg


def test_aggregate_reads_the_run_and_markdown_reports_it(fake_run):
    out, cfg = fake_run
    assert all(path.exists() for path in experiment.read_files(out, cfg, [0, 1]))
    summary = experiment.aggregate(out, cfg, [0, 1], {"seed0": 61.0, "seed1": 59.0, "total": 120.0}, resamples=500)
    assert summary["training_seeds"] == [42, 43] and summary["problems_per_seed"] == 4
    methods = summary["accuracy"]["methods"]
    for method, per_seed in CORRECT.items():
        expected = [100 * sum(hits) / 8 for hits in per_seed]
        assert methods[method]["per_seed"] == pytest.approx(expected)
        assert methods[method]["accuracy"] == pytest.approx(np.mean(expected))
    # per level = per problem here: hits of 2 samples, mean over the two seeds
    by_level = summary["accuracy_by_level"]
    assert {k: v["accuracy"] for k, v in by_level["dr_sft"].items()} == {"1": 100.0, "2": 75.0, "3": 75.0, "4": 100.0}
    assert {k: v["accuracy"] for k, v in by_level["base"].items()} == {"1": 25.0, "2": 25.0, "3": 0.0, "4": 100.0}
    assert by_level["dr_sft"]["2"]["ci95"] == [50.0, 100.0], "one problem a level: only the seeds vary"
    comparison = summary["accuracy"]["comparisons"]["dr_sft-sft"]
    assert comparison["difference"] == pytest.approx(np.mean([100 * 7 / 8, 100 * 7 / 8]) - np.mean([25, 25]))
    # the gap: self rows -0.2, -0.3 vs expert -2.0 (+ 0.1 k); guided -0.4 vs -2.0; expert rows are their own
    gaps = summary["policy_gap"]
    assert gaps["seed1"]["self"]["kept_logprob_mean"] == pytest.approx(-0.25 + 0.1)
    assert gaps["seed0"]["self"]["logratio"] == pytest.approx(1.75)
    assert gaps["seed0"]["all"]["logratio"] == pytest.approx((1.8 + 1.7 + 1.6 + 0) / 4)
    # dr_dft is the 4th trained method (j = 3): weight_var/self 0.01 j and 0.03 j, drift 0.5 j
    assert summary["weight_var"]["dr_dft"]["seed1"] == {"self": pytest.approx(0.06), "expert": pytest.approx(0.2)}
    assert summary["drift"]["dr_dft"]["seed0"] == {"kept": pytest.approx(1.5), "expert": pytest.approx(1.5)}
    assert summary["drift"]["sft"]["seed1"] == {"kept": pytest.approx(0.0), "expert": pytest.approx(0.0)}
    table = experiment.markdown(summary)
    assert "| DR+SFT | 87.5 | 87.5 | 87.5 |" in table
    assert "| DR+IS (our extension) |" in table and "| SFT | 25.0 | 25.0 | 25.0 |" in table
    assert "| self | 4 | -0.20 | -1.95 | 1.75 |" in table
    assert "| all | 8 | " in table and ("by 1.27 nats" in table or "by 1.28 nats" in table)  # 1.275
    assert "| DR+SFT | 100.0 | 75.0 | 75.0 | 100.0 |" in table  # per level
    assert "| DR+DFT | 0.0600 | – | 0.1000 |" in table
    assert "| DR+DFT | 1.50 | 1.50 |" in table
    assert "seed0 61 s, seed1 59 s, total 120 s" in table
    assert "The paper's ordering " in table and "DR+SFT above SFT: " in table and "DR+DFT at least DFT: " in table
    json.dumps(summary)  # summary.json
    experiment.figure(summary, out / "accuracy.png", out / "accuracy.svg")
    svg = (out / "accuracy.svg").read_text()
    assert (out / "accuracy.png").stat().st_size > 0 and "all problems" in svg and "1: sums, no carry" in svg
    assert "DR+PSFT (ours)" in svg


def test_ordering_sentence():
    labels = {"sft": "SFT", "dr_sft": "DR+SFT", "dft": "DFT", "dr_dft": "DR+DFT"}

    def summary(first, second):
        return {"labels": labels, "accuracy": {"comparisons": {
            "dr_sft-sft": {"ours": "dr_sft", "baseline": "sft", "claim": "above", "holds": first},
            "dr_dft-dft": {"ours": "dr_dft", "baseline": "dft", "claim": "at least", "holds": second}}}}

    assert experiment.ordering_sentence(summary("yes", "yes")).startswith("The paper's ordering appears (")
    sentence = experiment.ordering_sentence(summary("undecided", "yes"))
    assert sentence.startswith("The paper's ordering does not appear") and "DR+SFT above SFT: undecided" in sentence
