import json
import math

import pandas as pd
import pytest

from mindthegap import metrics
from mindthegap.report import evaluation_metrics, results_table, write_tables


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


def test_evaluation_metrics_and_table(tmp_path):
    judged = pd.DataFrame({"problem_id": ["a", "a", "b", "b"], "sample_idx": [0, 1, 0, 1],
                           "correct": [True, False, False, False], "extracted": ["1", "2", None, "3"],
                           "status": ["correct", "wrong", "no_answer", "wrong"], "finish_reason": ["stop"] * 4})
    result = evaluation_metrics(judged, model="m", method="sft", benchmark="b1")
    assert result["avg@2"] == pytest.approx(0.25) and result["pass@2"] == pytest.approx(0.5)
    assert result["grader_status"] == {"correct": 1, "no_answer": 1, "wrong": 2}
    files = []
    for method, bench, acc in [("base", "b1", 0.1), ("base", "b2", 0.3), ("sft", "b1", 0.5), ("sft", "b2", 0.7)]:
        path = tmp_path / f"{method}-{bench}.json"
        path.write_text(json.dumps({"method": method, "benchmark": bench, "accuracy": acc}))
        files.append(path)
    table = results_table(files, {"base": "Base", "sft": "SFT"}, ["b1", "b2"])
    assert table.loc["SFT", "Average"] == pytest.approx(60.0)
    assert table.index.tolist() == ["Base", "SFT"]
    write_tables(table, "m", 2, tmp_path / "t.md", tmp_path / "t.csv", tmp_path / "t.tex")
    assert "| SFT" in (tmp_path / "t.md").read_text()
    assert pd.read_csv(tmp_path / "t.csv", index_col=0).loc["Base", "b2"] == pytest.approx(30.0)
    assert "\\begin{tabular}" in (tmp_path / "t.tex").read_text()
    missing = results_table(files[:1], {"base": "Base"}, ["b1", "b2"])
    assert math.isnan(missing.loc["Base", "Average"])


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
    from helpers import ROOT

    record = provenance({"a": 1}, ["t.csv"], ROOT)
    assert record["packages"]["torch"] and record["config"] == {"a": 1}
    assert record["git_commit"] is None or len(record["git_commit"]) == 40
