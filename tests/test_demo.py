"""The demo end to end in a temporary directory, then a partial rerun plan after one hyper-parameter changes."""

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import ROOT, load_config, plan_jobs

pytestmark = pytest.mark.slow
# nats a token by which every kept self or guided response beats the expert's solution under the base model
GAP_MARGIN = 1.0


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("demo")
    command = [str(Path(sys.executable).with_name("snakemake")), "--snakefile", str(ROOT / "Snakefile"),
               "--directory", str(workdir), "--configfile", str(ROOT / "config/demo.yaml"),
               "--profile", str(ROOT / "profiles/local")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return workdir / load_config("demo.yaml")["results_dir"]


def test_results_table(demo_run):
    cfg = load_config("demo.yaml")
    table = pd.read_csv(demo_run / "tables/tiny.csv")
    assert table.columns.tolist() == ["Method", "Metric", *cfg["benchmarks"], "Average"]
    ours = table[table["Metric"] == "mean_acc"].set_index("Method")[[*cfg["benchmarks"], "Average"]]
    round2 = [cfg["methods"][m]["label"] + " (round 2)" for m in cfg["rewrite"]["round_methods"]]
    assert ours.index.tolist() == [m["label"] + (" (ours)" if m.get("extension") else "")
                                   for m in cfg["methods"].values()] + round2
    assert ours.notna().all().all() and ((ours >= 0) & (ours <= 100)).all().all()
    assert "paper" not in set(table["Metric"]), "the demo's model is none of the paper's"
    markdown = (demo_run / "tables/tiny.md").read_text()
    manifest = json.loads((demo_run / "manifest.json").read_text())
    assert manifest["packages"]["trl"]
    for method, spec in cfg["methods"].items():  # the config as run: the file's values, plus the schema's defaults
        assert spec.items() <= manifest["config"]["methods"][method].items(), method
    assert "DR+IS (ours)" in markdown and "avg@4" in markdown and "mean_acc" in markdown


def test_rewritten_dataset_has_all_three_sources(demo_run):
    problems = pd.read_parquet(next((demo_run / "problems").glob("*.parquet")))
    dataset = pd.read_parquet(demo_run / "datasets/tiny/round1/rewritten.parquet")
    stats = json.loads((demo_run / "datasets/tiny/round1/rewritten.stats.json").read_text())
    assert sorted(dataset["id"]) == sorted(problems["id"]), "every problem exactly once"
    counts = Counter(dataset["source"])
    assert stats["sources"] == {s: counts[s] for s in ("self", "guided", "expert")}
    assert all(counts[s] > 0 for s in ("self", "guided", "expert")), counts
    sampled = dataset[dataset["source"] != "expert"]
    assert sampled["behaviour_logprobs"].map(len).eq(sampled["completion_token_ids"].map(len)).all()
    assert not dataset["prompt"].str.contains("reference solution").any(), "the hint leaked into training"
    guided = dataset[dataset["source"] == "guided"]
    assert guided["sampled_with"].str.contains("reference solution").all()
    assert set(stats["self_samples"]["grader_status"]) <= {"correct", "wrong", "no_answer", "unparsable",
                                                            "timeout", "no_gold"}
    expert = pd.read_parquet(demo_run / "datasets/tiny/round1/expert.parquet")
    assert set(expert["source"]) == {"expert"}


def test_policy_gap(demo_run):
    """One scored row per rewritten row; self rows' log-ratio ~0 (sampled on the training prompt, temperature 1),
    guided rows' not (sampled on the hint prompt); the summary per source; each checkpoint's shift."""
    # round 1's data: the paper's offline rewriting
    dataset = pd.read_parquet(demo_run / "datasets/tiny/round1/rewritten.parquet")
    rows = pd.read_parquet(demo_run / "policy_gap/tiny/rows.parquet")
    summary = json.loads((demo_run / "policy_gap/tiny/summary.json").read_text())
    assert rows["id"].tolist() == dataset["id"].tolist() and rows["source"].tolist() == dataset["source"].tolist()
    sampled = rows[rows["source"] != "expert"]
    assert (sampled["logratio"].map(len) == dataset.loc[sampled.index, "behaviour_logprobs"].map(len)).all()
    ratios = {source: np.concatenate(list(rows.loc[rows["source"] == source, "logratio"]))
              for source in ("self", "guided")}
    assert np.abs(ratios["self"]).max() < 1e-3 < np.abs(ratios["guided"]).max()
    sources = summary["sources"]
    assert {s: sources[s]["rows"] for s in ("self", "guided", "expert")} == dict(Counter(dataset["source"]))
    assert sources["all"]["logratio"]["tokens"] == len(ratios["self"]) + len(ratios["guided"])
    # the demo's self problems are those the model solves: its own solutions are far likelier than the retold ones
    assert sources["self"]["kept"]["logprob_mean"]["mean"] > sources["guided"]["kept"]["logprob_mean"]["mean"]
    assert sources["self"]["logratio"]["var"] < 1e-6 < sources["guided"]["logratio"]["var"]
    for method in ("sft", "dft", "dr_sft", "dr_dft", "dr_is"):
        shift = pd.read_parquet(demo_run / f"policy_gap/tiny/checkpoints/round1/{method}/seed42.parquet")
        assert shift["id"].tolist() == rows["id"].tolist()
        assert np.allclose(shift["kept_logprob_mean_base"], rows["kept_logprob_mean"])
        summary = json.loads((demo_run / f"policy_gap/tiny/checkpoints/round1/{method}/seed42.json").read_text())
        assert (summary["method"], summary["run"]) == (method, f"round1/{method}/seed42")


def test_expert_solutions_are_off_policy(demo_run):
    """The miniature's precondition: under the base model, the expert's solutions (another policy's style) are far
    less likely than the kept self and guided responses of the same problems, row by row. Measured smallest gap:
    5.0 nats a token (guided), 7.7 (self); the margin leaves room for any seed."""
    rows = pd.read_parquet(demo_run / "policy_gap/tiny/rows.parquet")
    for source in ("self", "guided"):
        kept = rows[rows["source"] == source]
        assert len(kept) > 0, source
        gap = kept["kept_logprob_mean"] - kept["expert_logprob_mean"]
        assert (gap > GAP_MARGIN).all(), (source, gap.min())


def test_the_experiment_aggregates_a_real_run(demo_run, tmp_path):
    """`make experiment`'s aggregation on the demo's run taken as seed 0: the files it reads are where the workflow
    writes them, and its accuracies are the results table's."""
    from mindthegap import experiment
    from mindthegap.rounds import trained_methods

    cfg = load_config("demo.yaml")
    (tmp_path / "seed0").symlink_to(demo_run, target_is_directory=True)
    summary = experiment.aggregate(tmp_path, cfg, [0], {}, resamples=200)
    table = pd.read_csv(demo_run / "tables/tiny.csv")
    avg = table[table["Metric"] == "avg@4"].set_index("Method")["arith_test"]
    for method, row in summary["accuracy"]["methods"].items():
        label = cfg["methods"][method]["label"] + (" (ours)" if cfg["methods"][method].get("extension") else "")
        assert row["accuracy"] == pytest.approx(avg[label], abs=0.01), method
    levels = summary["accuracy_by_level"]["base"]
    assert np.mean([levels[level]["accuracy"] for level in levels]) == pytest.approx(avg["Base"], abs=0.01)
    assert set(summary["drift"]) == set(summary["weight_var"]) == set(trained_methods(cfg))
    assert summary["policy_gap"]["seed0"]["self"]["rows"] > 0
    assert "The paper's ordering " in experiment.markdown(summary)


def test_checkpoints_and_metrics(demo_run):
    for method in ("sft", "dft", "dr_sft", "dr_dft", "dr_is", "dr_psft"):
        log = json.loads((demo_run / f"checkpoints/tiny/round1/{method}/seed42/training_log.json").read_text())
        assert log["summary"]["global_steps"] > 0
    is_log = json.loads((demo_run / "checkpoints/tiny/round1/dr_is/seed42/training_log.json").read_text())
    assert any("weight_var/self" in entry for entry in is_log["log_history"])
    psft_log = json.loads((demo_run / "checkpoints/tiny/round1/dr_psft/seed42/training_log.json").read_text())
    assert all("clipped_fraction" in entry for entry in psft_log["log_history"] if "loss" in entry)
    metrics = json.loads((demo_run / "eval/tiny/base/arith_test/metrics.json").read_text())
    assert metrics["n"] == 4 and sum(metrics["grader_status"].values()) == 4 * metrics["problems"]


def test_partial_rerun_after_one_training_change(demo_run):
    """Changing one method's learning rate plans only its training, its evaluations, the report and the manifest."""
    cfg = load_config("demo.yaml")
    assert Counter(job.rule.name for job in plan_jobs(cfg, demo_run.parents[1])) == Counter(), "demo is complete"
    reordered = {**cfg, "problems": dict(reversed(list(cfg["problems"].items())))}
    assert plan_jobs(reordered, demo_run.parents[1]) == [], "key order alone must not rerun anything"
    cfg["methods"]["dr_sft"]["training"] = {"learning_rate": 5e-4}  # trained in round 1 only, samples no round
    jobs = plan_jobs(cfg, demo_run.parents[1])
    shards = cfg["evaluation"]["shards"]
    # one evaluation job per shard samples every benchmark (one model load); one job judges the run
    # and the report's figures and tables that read the training log or the evaluation; not those of the data
    assert Counter(job.rule.name for job in jobs) == {"train": 1, "evaluate_sample": shards,
                                                      "evaluate_judge": 1, "report": 1, "manifest": 1,
                                                      "policy_gap_checkpoint": 1, "evaluation_table": 1,
                                                      "figure_accuracy": 1, "figure_pass_at_k": 1,
                                                      "figure_training": 1, "figure_policy_gap": 1, "all": 1}
    assert {job.wildcards.get("method") or job.wildcards.get("run") for job in jobs
            if job.rule.name.startswith(("train", "evaluate", "policy_gap"))} == {"dr_sft", "round1/dr_sft/seed42"}


def test_round_two_trains_on_data_rewritten_by_round_ones_model(demo_run):
    """Round 2 resamples with round 1's DR+DFT: its own dataset, stats and table rows."""
    problems = pd.read_parquet(next((demo_run / "problems").glob("*.parquet")))
    first, second = (json.loads((demo_run / f"datasets/tiny/round{r}/rewritten.stats.json").read_text())
                     for r in (1, 2))
    dataset = pd.read_parquet(demo_run / "datasets/tiny/round2/rewritten.parquet")
    assert sorted(dataset["id"]) == sorted(problems["id"])
    assert second["sources"] == {s: int((dataset["source"] == s).sum()) for s in ("self", "guided", "expert")}
    assert not (demo_run / "datasets/tiny/round2/expert.parquet").exists(), "round 2 trains DR+DFT only"
    assert (demo_run / "checkpoints/tiny/round2/dr_dft/seed42/training_log.json").exists()
    by_round = json.loads((demo_run / "tables/tiny.rounds.json").read_text())
    row = next(r for r in by_round["runs"] if (r["round"], r["method"]) == (2, "dr_dft"))
    assert row["self %"] == pytest.approx(100 * second["sources"]["self"] / sum(second["sources"].values()))
    assert [(d["round"], d["variant"]) for d in by_round["datasets"]] == [(1, "rewritten"), (2, "rewritten")]
    print("round 1 sources", first["sources"], "round 2 sources", second["sources"])


@pytest.mark.parametrize("rewrite", [{"round_init": "previous"}, {"round_policy": "dr_sft"}])
def test_a_round_two_setting_reruns_round_two_only(demo_run, rewrite):
    """Rounds are a wildcard of the DAG: a round-2 setting leaves every round-1 file as it is."""
    cfg = load_config("demo.yaml")
    cfg["rewrite"].update(rewrite)
    jobs = [job for job in plan_jobs(cfg, demo_run.parents[1])  # the per-model tables and figures aside
            if job.rule.name not in ("report", "manifest", "all") and not job.rule.name.startswith("figure_")
            and not job.rule.name.endswith("_table")]
    assert jobs and all(job.wildcards.get("round", "") == "2" or job.wildcards.get("run", "").startswith("round2/")
                        for job in jobs), [(job.rule.name, dict(job.wildcards)) for job in jobs]
    names = Counter(job.rule.name for job in jobs)
    print(rewrite, names)
    expected = {"train", "evaluate_sample", "evaluate_judge", "policy_gap_checkpoint"}
    if "round_policy" in rewrite:  # another sampler: round 2 is sampled, verified and rewritten again
        expected |= {"sample", "verify", "split_self", "rewrite"}
    assert set(names) == expected


def declared_report_files(cfg: dict, workdir: Path) -> set[str]:
    """Every output the demo's plan marks with report(), relative to the results directory: what a full run
    puts in the Snakemake report."""
    from snakemake.io import is_flagged

    results = cfg["results_dir"]
    return {str(Path(path).relative_to(results)) for job in plan_jobs(cfg, workdir) for path in job.output
            if is_flagged(path, "report")}


def embedded(page: str, name: str):
    """A JSON value that the report's page assigns to a JavaScript variable (`results`, `categories`)."""
    return json.JSONDecoder().raw_decode(page, re.search(rf"\b{name} = (?=\{{)", page).end())[0]


def test_report_holds_every_declared_figure_and_table(demo_run, tmp_path):
    """`snakemake --report` on the finished demo: one self-contained HTML page and a zip, each holding every
    figure and table that the workflow declares for it, with its caption, in its category."""
    import time
    import zipfile

    cfg = load_config("demo.yaml")
    declared = declared_report_files(cfg, tmp_path / "plan")
    figures = {"accuracy", "pass_at_k", "sources", "training", "policy_gap"}
    assert {f"figures/tiny/{name}.png" for name in figures} <= declared
    assert {f"tables/tiny{kind}.html" for kind in ("", ".evaluation", ".sources")} | {"manifest.json"} <= declared
    assert "contamination/arith_train.html" in declared, "the decontamination counts"
    workdir, timings = demo_run.parents[1], {}
    for kind in ("html", "zip"):
        started = time.monotonic()
        command = [str(Path(sys.executable).with_name("snakemake")), "--snakefile", str(ROOT / "Snakefile"),
                   "--directory", str(workdir), "--configfile", str(ROOT / "config/demo.yaml"),
                   "--report", str(tmp_path / f"report.{kind}")]
        result = subprocess.run(command, capture_output=True, text=True, timeout=900)
        timings[kind] = time.monotonic() - started
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    print(f"report build: {timings['html']:.1f} s (html), {timings['zip']:.1f} s (zip); {len(declared)} files: "
          + ", ".join(sorted(declared)))
    html = (tmp_path / "report.html").read_text()
    with zipfile.ZipFile(tmp_path / "report.zip") as archive:
        names = archive.namelist()
        zipped_page = archive.read("report/report.html").decode()
    shown = {f"{cfg['results_dir']}/{name}" for name in declared}
    for page in (html, zipped_page):
        results, categories = embedded(page, "results"), embedded(page, "categories")
        assert set(results) == shown
        assert set(categories) == {"Data", "Rewriting", "Policy gap", "Training", "Evaluation", "Provenance"}
        assert {path for subcategories in categories.values() for paths in subcategories.values()
                for path in paths} == shown, "every file in a category"
        for path, entry in results.items():
            assert entry["caption"].strip(), f"{path} has no caption"
        assert "unbiased estimator" in results[f"{cfg['results_dir']}/figures/tiny/pass_at_k.png"]["caption"]
    for path, entry in embedded(html, "results").items():  # the self-contained page embeds each file
        assert entry["data_uri"].startswith(f"data:{entry['mime_type']}"), path
    for name in declared:  # the zip holds the files themselves
        assert any(entry.startswith("report/data/") and entry.endswith("/" + Path(name).name) for entry in names), name
