import json
import math

import pandas as pd
import pytest

from helpers import ROOT, paper_config
from mindthegap import metrics
from mindthegap.io import DataError
from mindthegap.report import (evaluation_metrics, paper_model, read_paper_results, results_table, sample_counts,
                               write_tables)


def test_avg_at_n_is_the_mean_over_all_samples_not_sample_zero():
    correct = [[False, True, True, True], [True, False, False, False]]
    assert metrics.avg_at_n(correct) == pytest.approx(0.5)


def test_pass_at_k_unbiased():
    assert metrics.pass_at_k(4, 0, 1) == 0.0
    assert metrics.pass_at_k(4, 4, 2) == 1.0
    assert metrics.pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert metrics.pass_at_k(4, 1, 2) == pytest.approx(1 - (3 * 2) / (4 * 3))
    with pytest.raises(ValueError):
        metrics.pass_at_k(2, 1, 3)


def test_maj_at_k_and_ci():
    answers = [["1", "2", "2"], ["5", None, "6"]]
    correct = [[False, True, True], [True, False, False]]
    assert metrics.maj_at_k(answers, correct, 3) == pytest.approx(1.0)
    low, high = metrics.bootstrap_ci([[True], [False], [True], [False]])
    assert 0 <= low <= 0.5 <= high <= 1


def test_harness_mean_acc_rounds_each_sample_column_then_averages():
    # columns: 1/3 -> 33.3 and 2/3 -> 66.7; mean 50.0
    assert metrics.harness_mean_acc([[True, True], [False, True], [False, False]]) == (50.0, [33.3, 66.7])
    # 16 columns of 1/3: the harness says 33.3 where the exact avg@16 is 33.33...
    thirds = [[True] * 16, [False] * 16, [False] * 16]
    mean_acc, all_acc = metrics.harness_mean_acc(thirds)
    assert all_acc == [33.3] * 16 and mean_acc == pytest.approx(33.3, abs=1e-12)
    assert 100 * metrics.avg_at_n(thirds) - mean_acc == pytest.approx(1 / 30)


def test_harness_mean_acc_rounds_half_to_even_as_numpy():
    # Minerva Math has 272 problems: 17/272 = 6.25 % and 51/272 = 18.75 % are exact ties; the harness's
    # np.round gives 6.2 and 18.8 (half to even), where rounding half up would give 6.3
    column = [[i < 17, i < 51] for i in range(272)]
    assert metrics.harness_mean_acc(column) == (12.5, [6.2, 18.8])


def test_harness_mean_acc_pads_a_short_row_with_its_last_verdict():
    assert metrics.harness_mean_acc([[True, False, True], [True]]) == (pytest.approx(250 / 3), [100.0, 50.0, 100.0])
    mean_acc, all_acc = metrics.harness_mean_acc([])
    assert math.isnan(mean_acc) and all_acc == []


def _judged():
    return pd.DataFrame({"problem_id": ["a", "a", "b", "b", "c", "c"], "sample_idx": [1, 0, 0, 1, 0, 1],
                         "correct": [False, True, False, True, False, False],
                         "extracted": ["2", "1", None, "3", "4", "4"],
                         "status": ["wrong", "correct", "no_answer", "correct", "wrong", "wrong"],
                         "finish_reason": ["stop", "stop", "length", "stop", "stop", "prompt_too_long"]})


def test_evaluation_metrics_hold_mean_acc_beside_the_exact_avg():
    result = evaluation_metrics(_judged(), model="m", method="sft", benchmark="b1")
    assert result["avg@2"] == pytest.approx(1 / 3) and result["accuracy"] == result["avg@2"]
    assert result["all_acc"] == [33.3, 33.3] and result["mean_acc"] == pytest.approx(33.3)
    assert result["pass@2"] == pytest.approx(2 / 3) and result["samples"] == 6 and result["problems"] == 3
    assert result["grader_status"] == {"correct": 2, "no_answer": 1, "wrong": 3}
    assert result["finish_reason"] == {"length": 1, "prompt_too_long": 1, "stop": 4} and result["truncated"] == 1
    json.dumps(result)  # plain JSON types only


PAPER_CSV = ROOT / "data" / "paper" / "main_results.csv"
SHARED_PAPER_CSV = ROOT.parent / "shared" / "data" / "paper" / "main_results.csv"


def test_the_papers_numbers_are_in_the_repository():
    paper = read_paper_results(PAPER_CSV)
    assert len(paper) == 10 and paper[("Qwen2.5-Math-7B", "DR+DFT")]["average"] == 42.03
    assert paper[("Llama-3.1-8B-Instruct", "Base")]["math500"] == 36.18
    assert (ROOT / "data" / "paper" / "PROVENANCE.md").exists()
    if SHARED_PAPER_CSV.exists():
        assert PAPER_CSV.read_bytes() == SHARED_PAPER_CSV.read_bytes()


def test_read_paper_results_names_the_bad_line(tmp_path):
    bad = tmp_path / "paper.csv"
    bad.write_text("model,method,math500,minerva_math,olympiadbench,aime24,amc23,average\nM,Base,1,2,x,4,5,3\n")
    with pytest.raises(DataError, match=r"paper.csv, line 2"):
        read_paper_results(bad)
    bad.write_text("model,method,math500\nM,Base,1\n")
    with pytest.raises(DataError, match="columns"):
        read_paper_results(bad)


@pytest.mark.parametrize("names, expected", [
    (["qwen25_math_7b", "Qwen/Qwen2.5-Math-7B"], "Qwen2.5-Math-7B"),
    (["llama", "meta-llama/Llama-3.1-8B-Instruct"], "Llama-3.1-8B-Instruct"),
    (["qwen25_math_7b", "results/rehearsal/models/qwen"], "Qwen2.5-Math-7B"),  # the config key alone
    (["llama31_8b_instruct", None], "Llama-3.1-8B-Instruct"),
    (["qwen_instruct", "Qwen/Qwen2.5-Math-7B-Instruct"], None),
    (["tiny", None], None),
])
def test_paper_model_matches_hub_path_or_config_key(names, expected):
    assert paper_model(names, ["Qwen2.5-Math-7B", "Llama-3.1-8B-Instruct"]) == expected


def _metric_files(tmp_path, cells):
    files = []
    for (method, bench), (accuracy, mean_acc) in cells.items():
        path = tmp_path / f"{method}-{bench}.json"
        path.write_text(json.dumps({
            "method": method, "benchmark": bench, "n": 16, "accuracy": accuracy, "mean_acc": mean_acc,
            "samples": 32, "truncated": 2, "finish_reason": {"length": 2, "stop": 29, "prompt_too_long": 1},
            "grader_status": {"correct": 20, "wrong": 10, "no_answer": 2}}))
        files.append(path)
    return files


BENCHES = ["math500", "minerva_math", "olympiadbench", "aime24", "amc23"]
METHODS = {"base": "Base", "dr_dft": "DR+DFT", "dr_is": "DR+IS"}


def _paper_table(tmp_path):
    cells = {(m, b): (0.4, 40.0 + i) for m in METHODS for i, b in enumerate(BENCHES)}
    files = _metric_files(tmp_path, cells)
    paper = read_paper_results(PAPER_CSV)
    paper[("Qwen2.5-Math-7B", "DR+IS")] = dict(paper[("Qwen2.5-Math-7B", "Base")])  # must never be used
    table = results_table(files, METHODS, BENCHES, paper=paper, model="Qwen2.5-Math-7B", extensions=["dr_is"])
    return files, table


def test_results_table_puts_the_paper_and_the_difference_under_each_method(tmp_path):
    _, table = _paper_table(tmp_path)
    rows = table.set_index(["Method", "Metric"])
    assert list(rows.index) == [
        ("Base", "mean_acc"), ("Base", "avg@16"), ("Base", "paper"), ("Base", "Δ"),
        ("DR+DFT", "mean_acc"), ("DR+DFT", "avg@16"), ("DR+DFT", "paper"), ("DR+DFT", "Δ"),
        ("DR+IS (ours)", "mean_acc"), ("DR+IS (ours)", "avg@16")]
    assert rows.loc[("Base", "mean_acc"), "Average"] == pytest.approx(42.0)
    assert rows.loc[("Base", "avg@16"), "math500"] == pytest.approx(40.0)
    assert rows.loc[("Base", "paper"), "math500"] == 39.90 and rows.loc[("Base", "paper"), "Average"] == 21.67
    assert rows.loc[("Base", "Δ"), "minerva_math"] == pytest.approx(41.0 - 14.43)
    assert rows.loc[("DR+DFT", "Δ"), "Average"] == pytest.approx(42.0 - 42.03)
    assert table.columns.tolist() == ["Method", "Metric", *BENCHES, "Average"]


def test_results_table_without_the_papers_model_or_a_benchmark(tmp_path):
    files = _metric_files(tmp_path, {("base", "math500"): (0.5, 50.0)})
    table = results_table(files, {"base": "Base"}, ["math500", "amc23"], paper=read_paper_results(PAPER_CSV),
                          model=None)
    assert table["Metric"].tolist() == ["mean_acc", "avg@16"]
    assert math.isnan(table.loc[0, "amc23"]) and math.isnan(table.loc[0, "Average"])
    with pytest.raises(DataError, match="no mean_acc"):
        old = tmp_path / "old.json"
        old.write_text(json.dumps({"method": "base", "benchmark": "math500", "n": 4, "accuracy": 0.5}))
        results_table([old], {"base": "Base"}, ["math500"])


def test_sample_counts_sum_over_benchmarks(tmp_path):
    files, _ = _paper_table(tmp_path)
    counts = sample_counts(files, METHODS, ["dr_is"]).set_index("Method")
    assert counts.loc["DR+IS (ours)", "samples"] == 5 * 32 and counts.loc["Base", "truncated"] == 10
    assert counts.loc["Base", "prompt too long"] == 5 and counts.loc["Base", "no_answer"] == 10
    assert counts.columns.tolist()[:4] == ["samples", "truncated", "prompt too long", "correct"]


def test_write_tables_markdown_csv_latex(tmp_path):
    files, table = _paper_table(tmp_path)
    write_tables(table, "qwen25_math_7b", tmp_path / "t.md", tmp_path / "t.csv", tmp_path / "t.tex",
                 paper_name="Qwen2.5-Math-7B", counts=sample_counts(files, METHODS, ["dr_is"]))
    markdown = (tmp_path / "t.md").read_text()
    print(markdown)  # the example table of the report (pytest -s)
    assert "| DR+IS (ours)" in markdown and "| Δ " in markdown and "Qwen2.5-Math-7B in the paper's table" in markdown
    assert "prompt too long" in markdown and "truncated" in markdown and "unparsable" in markdown
    csv = pd.read_csv(tmp_path / "t.csv")
    assert csv.columns.tolist() == ["Method", "Metric", *BENCHES, "Average"]
    assert csv.set_index(["Method", "Metric"]).loc[("Base", "paper"), "amc23"] == 29.38
    latex = (tmp_path / "t.tex").read_text()
    assert "\\begin{tabular}" in latex and "$\\Delta$" in latex and "mean\\_acc" in latex and "qwen25\\_math" in latex


def test_training_diagnostics_average_the_logged_weight_stats(tmp_path):
    from mindthegap.report import training_diagnostics

    run = tmp_path / "dr_is"
    run.mkdir()
    history = [{"loss": 1.0, "weight_var/self": 0.1, "weight_var/expert": 0.4},
               {"loss": 0.5, "weight_var/self": 0.3, "weight_var/expert": 0.2}, {"train_runtime": 3.0}]
    (run / "training_log.json").write_text(json.dumps({"summary": {"global_steps": 2, "train_loss": 0.75},
                                                       "log_history": history}))
    table = training_diagnostics({"dr_is": run}, {"dr_is": "DR+IS"})
    assert table.loc["DR+IS", "w var self"] == pytest.approx(0.2)
    assert table.loc["DR+IS", "w var expert"] == pytest.approx(0.3)
    assert table.loc["DR+IS", "steps"] == 2


def test_provenance_records_versions_and_commit(tmp_path):
    from mindthegap.report import provenance
    from helpers import ROOT, paper_config

    record = provenance({"a": 1}, ["t.csv"], ROOT)
    assert record["packages"]["torch"] and record["config"] == {"a": 1}
    assert record["git_commit"] is None or len(record["git_commit"]) == 40


def test_report_rule_gets_extensions_model_names_and_the_papers_table(tmp_path, monkeypatch):
    from helpers import load_config, plan_jobs

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # planning never downloads
    jobs = plan_jobs({**paper_config(), "extensions": True}, tmp_path)
    report = {job.wildcards.model: job for job in jobs if job.rule.name == "report"}
    qwen = report["qwen25_math_7b"]
    assert qwen.params.extensions == ["dr_is", "dr_self_dft", "dr_guided_dft", "mtg_sft", "mtg_dft", "power",
                                      "dr_power", "asft", "dr_asft", "psft", "dr_psft"]
    assert qwen.params.model_names == ["qwen25_math_7b", "Qwen/Qwen2.5-Math-7B"]
    assert qwen.input.paper == str(PAPER_CSV)
    papers = read_paper_results(PAPER_CSV)
    assert {paper_model(job.params.model_names, {m for m, _ in papers}) for job in report.values()} == {
        "Qwen2.5-Math-7B", "Llama-3.1-8B-Instruct"}


def _run_files(tmp_path, runs):
    """metrics.json files of (method, round, seed) -> {benchmark: (accuracy, mean_acc, ci95)}."""
    files = []
    for (method, round_, seed), cells in runs.items():
        for bench, (accuracy, mean_acc, ci) in cells.items():
            path = tmp_path / f"{method}-r{round_}-s{seed}-{bench}.json"
            path.write_text(json.dumps({
                "method": method, "round": round_, "seed": seed, "benchmark": bench, "n": 4, "accuracy": accuracy,
                "mean_acc": mean_acc, "ci95": ci, "samples": 8, "truncated": 0, "finish_reason": {"stop": 8},
                "grader_status": {"correct": 4, "wrong": 4}}))
            files.append(path)
    return files


def test_seeds_are_averaged_with_their_spread_beside_the_sampling_interval(tmp_path):
    import statistics

    accuracy = {42: (0.50, 0.30), 43: (0.60, 0.20), 44: (0.70, 0.40)}  # per seed: math500, amc23
    runs = {("base", 0, None): {"math500": (0.4, 40.0, [0.3, 0.5]), "amc23": (0.1, 10.0, [0.0, 0.2])}}
    for seed, (a, b) in accuracy.items():
        runs[("dr_dft", 1, seed)] = {"math500": (a, 100 * a, [a - 0.1, a + 0.1]),
                                     "amc23": (b, 100 * b, [b - 0.05, b + 0.15])}
    runs[("dr_dft", 2, 42)] = {"math500": (0.8, 80.0, [0.7, 0.9]), "amc23": (0.5, 50.0, [0.4, 0.6])}
    files = _run_files(tmp_path, runs)
    table = results_table(files, {"base": "Base", "dr_dft": "DR+DFT"}, ["math500", "amc23"],
                          paper=read_paper_results(PAPER_CSV), model="Qwen2.5-Math-7B")
    rows = table.set_index(["Method", "Metric"])
    assert list(rows.index) == [
        ("Base", "mean_acc"), ("Base", "avg@4"), ("Base", "paper"), ("Base", "Δ"),
        ("DR+DFT", "mean_acc"), ("DR+DFT", "avg@4"), ("DR+DFT", "sd (seeds)"), ("DR+DFT", "±CI95 (sampling)"),
        ("DR+DFT", "paper"), ("DR+DFT", "Δ"),
        ("DR+DFT (round 2)", "mean_acc"), ("DR+DFT (round 2)", "avg@4")]  # one seed: no spread; never compared
    assert rows.loc[("DR+DFT", "avg@4"), "math500"] == pytest.approx(60.0)
    assert rows.loc[("DR+DFT", "sd (seeds)"), "math500"] == pytest.approx(statistics.stdev([50, 60, 70]))
    assert rows.loc[("DR+DFT", "sd (seeds)"), "amc23"] == pytest.approx(statistics.stdev([30, 20, 40]))
    assert rows.loc[("DR+DFT", "sd (seeds)"), "Average"] == pytest.approx(statistics.stdev([40, 40, 55]))
    assert rows.loc[("DR+DFT", "±CI95 (sampling)"), "math500"] == pytest.approx(10.0)
    assert rows.loc[("DR+DFT", "±CI95 (sampling)"), "amc23"] == pytest.approx(10.0)
    assert rows.loc[("DR+DFT (round 2)", "mean_acc"), "Average"] == pytest.approx(65.0)
    write_tables(table, "m", tmp_path / "t.md", tmp_path / "t.csv", tmp_path / "t.tex")
    markdown = (tmp_path / "t.md").read_text()
    assert "means over the training seeds" in markdown and "round r-1 model" in markdown


def test_rounds_table_holds_accuracy_and_sources_by_round(tmp_path):
    from mindthegap.report import rounds_table, write_rounds

    runs = {("base", 0, None): {"b": (0.2, 20.0, [0.1, 0.3])},
            ("dr_dft", 1, 42): {"b": (0.4, 40.0, [0.3, 0.5])}, ("dr_dft", 1, 43): {"b": (0.6, 60.0, [0.5, 0.7])},
            ("dr_dft", 2, 42): {"b": (0.7, 70.0, [0.6, 0.8])}}
    stats = {(1, "rewritten"): {"sources": {"self": 2, "guided": 1, "expert": 1}},
             (2, "rewritten"): {"sources": {"self": 3, "guided": 1, "expert": 0}}}
    methods = {"base": {"label": "Base", "data": ""}, "dr_dft": {"label": "DR+DFT", "data": "rewritten"}}
    table = rounds_table(_run_files(tmp_path, runs), stats, methods)
    assert table[["round", "method", "seeds"]].values.tolist() == [[0, "base", 1], [1, "dr_dft", 2],
                                                                    [2, "dr_dft", 1]]
    assert table["avg@n"].tolist() == pytest.approx([20.0, 50.0, 70.0])
    assert table.loc[1, "sd (seeds)"] == pytest.approx(14.142135, rel=1e-6)
    assert table.loc[1, "self %"] == 50.0 and table.loc[2, "self %"] == 75.0 and math.isnan(table.loc[0, "self %"])
    write_rounds(table, stats, tmp_path / "r.csv", tmp_path / "r.json", {"rounds": 2})
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["runs"][2]["guided %"] == 25.0 and record["datasets"][1]["round"] == 2
