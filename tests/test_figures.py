"""The report's figures and detail tables on small synthetic inputs shaped like the workflow's files: pass@k and
maj@k curves against brute force, the tables against hand counts, every figure written as a valid PNG and SVG
whose series differ by more than colour."""

import itertools
import json
import math
import random
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from mindthegap import figures, metrics
from mindthegap.report import (evaluation_curves, evaluation_detail, evaluation_metrics, shown_ks, source_table,
                               write_table_formats)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def brute_pass_at_k(row, k):
    """pass@k as its definition: the share of all k-subsets of the samples that hold a correct one."""
    subsets = list(itertools.combinations(row, k))
    return sum(any(s) for s in subsets) / len(subsets)


def verdicts(n_problems=7, n=6, seed=0):
    """A verdicts.parquet-shaped frame: problem_id, sample_idx, correct, extracted, status, finish_reason."""
    rng = random.Random(seed)
    rows = []
    for p in range(n_problems):
        skill = rng.random()
        for i in range(n):
            correct = rng.random() < skill
            answer = "42" if correct else rng.choice(["1", "2", "2", None])
            rows.append({"problem_id": f"p{p}", "sample_idx": i, "correct": correct, "extracted": answer,
                         "status": "correct" if correct else ("no_answer" if answer is None else "wrong"),
                         "finish_reason": "length" if answer is None else "stop"})
    return pd.DataFrame(rows).sample(frac=1, random_state=seed)  # the file's order is not the samples' order


def test_curves_match_brute_force():
    frame = verdicts()
    rows = [g.sort_values("sample_idx")["correct"].tolist() for _, g in frame.groupby("problem_id")]
    answers = [g.sort_values("sample_idx")["extracted"].tolist() for _, g in frame.groupby("problem_id")]
    curve = metrics.pass_at_k_curve(rows)
    assert len(curve) == 6
    for k in range(1, 7):
        assert curve[k - 1] == pytest.approx(sum(brute_pass_at_k(r, k) for r in rows) / len(rows))
    assert curve[0] == pytest.approx(metrics.avg_at_n(rows))
    majority = metrics.maj_at_k_curve(answers, rows)
    assert majority[0] == pytest.approx(sum(r[0] for r in rows) / len(rows)), "maj@1 is sample 0's accuracy"
    for k in range(1, 7):  # independent vote: the most frequent non-empty answer, earliest on ties
        hits = 0
        for a, c in zip(answers, rows):
            votes = Counter(x for x in a[:k] if x)
            if votes:
                best = max(votes.values())
                winner = next(x for x in a[:k] if x and votes[x] == best)
                hits += c[a.index(winner)]
        assert majority[k - 1] == pytest.approx(hits / len(rows))


def test_shown_ks():
    assert shown_ks(16) == [1, 2, 4, 8, 16]
    assert shown_ks(6) == [1, 2, 4, 6]
    assert shown_ks(1) == [1] and shown_ks(0) == []


DR_DFT = "round1/dr_dft/seed42"  # a trained run's id (mindthegap.rounds)


@pytest.fixture
def runs(tmp_path):
    """eval/{model}/{run}/{bench}/ for two runs (the base model, one trained run) and two benchmarks, as the
    workflow writes them."""
    metric_files, verdict_files = [], []
    for m, (run, method, round_, seed) in enumerate([("base", "base", 0, None), (DR_DFT, "dr_dft", 1, 42)]):
        for b, bench in enumerate(["alpha", "beta"]):
            folder = tmp_path / "eval/tiny" / run / bench
            folder.mkdir(parents=True)
            judged = verdicts(seed=10 * m + b)
            judged.to_parquet(folder / "verdicts.parquet")
            record = evaluation_metrics(judged, model="tiny", method=method, benchmark=bench, round=round_, seed=seed)
            (folder / "metrics.json").write_text(json.dumps(record))
            metric_files.append(folder / "metrics.json")
            verdict_files.append(folder / "verdicts.parquet")
    return metric_files, verdict_files


def test_evaluation_detail_table(runs):
    metric_files, verdict_files = runs
    curves = evaluation_curves(verdict_files)
    table = evaluation_detail(metric_files, curves, {"base": "Base", DR_DFT: "DR+DFT"}, ["alpha", "beta"],
                              extensions=[DR_DFT])
    assert table[["Method", "Benchmark"]].values.tolist() == [["Base", "alpha"], ["Base", "beta"],
                                                              ["DR+DFT (ours)", "alpha"], ["DR+DFT (ours)", "beta"]]
    row = table.iloc[2]
    judged = pd.read_parquet(verdict_files[2])
    rows = [g.sort_values("sample_idx")["correct"].tolist() for _, g in judged.groupby("problem_id")]
    assert row["avg@n"] == pytest.approx(100 * np.mean([np.mean(r) for r in rows]))
    assert row["CI low"] <= row["avg@n"] <= row["CI high"]
    assert row["pass@4"] == pytest.approx(100 * np.mean([brute_pass_at_k(r, 4) for r in rows]))
    assert row["pass@1"] == pytest.approx(row["avg@n"])
    assert row["truncated"] == (judged["finish_reason"] == "length").sum()
    assert row["no_answer"] + row["wrong"] + row["correct"] == len(judged)
    assert [c for c in table.columns if c.startswith(("pass@", "maj@"))] == [
        "pass@1", "pass@2", "pass@4", "pass@6", "maj@1", "maj@2", "maj@4", "maj@6"]


def dataset(counts):
    rows = []
    for source, count in counts.items():
        for i in range(count):
            sampled = source != "expert"
            rows.append({"id": f"{source}{i}", "prompt": "q", "completion": "x" * (10 + i), "source": source,
                         "completion_token_ids": np.arange(5 + i) if sampled else None})
    return pd.DataFrame(rows)


def gap_rows(seed=0):
    """rows.parquet of the policy-gap stage (its contract): kept vs expert scores, the token log-ratios."""
    rng = np.random.default_rng(seed)
    rows = []
    for source, count, centre in (("self", 6, -0.3), ("guided", 4, -0.8), ("expert", 3, -2.0)):
        for i in range(count):
            kept = rng.normal(centre, 0.1, size=12)
            expert = rng.normal(-2.0, 0.2, size=20)
            ratio = [] if source == "expert" else list(rng.normal(0 if source == "self" else -0.5, 0.3, size=12))
            rows.append({"id": f"{source}{i}", "source": source, "kept_tokens": 12,
                         "kept_logprob_sum": kept.sum(), "kept_logprob_mean": kept.mean(),
                         "kept_perplexity": math.exp(-kept.mean()), "expert_tokens": 20,
                         "expert_logprob_sum": expert.sum(), "expert_logprob_mean": expert.mean(),
                         "expert_perplexity": math.exp(-expert.mean()), "logratio": ratio,
                         "logratio_mean": float(np.mean(ratio)) if ratio else math.nan,
                         "logratio_var": float(np.var(ratio)) if ratio else math.nan})
    return pd.DataFrame(rows)


def gap_summary(rows):
    """summary.json of the policy-gap stage, computed here from the rows (its contract's shape)."""
    def describe(values):
        values = pd.Series(values, dtype=float)
        return {"mean": values.mean(), "median": values.median(), **{f"q{q}": values.quantile(q / 100)
                                                                    for q in (10, 25, 75, 90)}}

    sources = {}
    for source, part in [*rows.groupby("source"), ("all", rows)]:
        tokens = np.concatenate([np.asarray(r) for r in part["logratio"] if len(r)] or [np.array([])])
        sources[source] = {"rows": len(part),
                           **{side: {metric: describe(part[f"{side}_{metric}"])
                                     for metric in ("logprob_mean", "logprob_sum", "perplexity", "tokens")}
                              for side in ("kept", "expert")},
                           **({} if source == "expert" else {"logratio": {
                               "tokens": len(tokens), "mean": tokens.mean() if len(tokens) else None,
                               "var": tokens.var() if len(tokens) else None}})}
    return {"model": "tiny", "scored_with": "tiny", "sources": sources}


def test_source_table(tmp_path):
    rewritten = dataset({"self": 3, "guided": 2, "expert": 1})
    expert = dataset({"expert": 6})
    stats = {"sources": {"self": 3, "guided": 2, "expert": 1}, "self_samples": {"samples": 24, "accuracy": 0.25},
             "guided_samples": {"samples": 12, "accuracy": 0.5}}
    rows = gap_rows()
    summary = gap_summary(rows)
    table = source_table({"expert": (expert, {"sources": {"expert": 6}}), "rewritten": (rewritten, stats)}, summary)
    assert table[["Dataset", "Source", "rows"]].values.tolist() == [
        ["expert", "expert", 6], ["rewritten", "self", 3], ["rewritten", "guided", 2], ["rewritten", "expert", 1]]
    rw = table[table["Dataset"] == "rewritten"].set_index("Source")
    assert rw.loc["self", "share %"] == pytest.approx(50)
    assert rw.loc["guided", "phase accuracy %"] == pytest.approx(50)
    assert math.isnan(rw.loc["expert", "phase accuracy %"])
    assert rw.loc["self", "chars (mean)"] == pytest.approx(11)  # lengths 10, 11, 12
    assert rw.loc["guided", "kept logp/token"] == pytest.approx(rows[rows.source == "guided"].kept_logprob_mean.mean())
    assert rw.loc["self", "log-ratio var"] == pytest.approx(np.var(np.concatenate(
        rows[rows.source == "self"]["logratio"].tolist())))
    assert table[table["Dataset"] == "expert"]["kept logp/token"].isna().all(), "only the scored dataset has a gap"
    paths = [tmp_path / f"t.{x}" for x in ("md", "csv", "tex", "html")]
    write_table_formats(table, "data per source", "a note", *paths)
    markdown = (tmp_path / "t.md").read_text()
    assert "nan" not in markdown and "–" in markdown and "a note" in markdown
    assert "\\begin{tabular}" in (tmp_path / "t.tex").read_text() and "<table" in (tmp_path / "t.html").read_text()
    assert pd.read_csv(tmp_path / "t.csv")["rows"].tolist() == [6, 3, 2, 1]
    without_gap = source_table({"rewritten": (rewritten, stats)})
    assert "kept logp/token" not in without_gap and without_gap["tokens (mean)"].iloc[0] == pytest.approx(6)


def written(tmp_path, figure, name):
    png, svg = tmp_path / f"{name}.png", tmp_path / f"{name}.svg"
    figures.save(figure, png, svg)
    assert png.read_bytes().startswith(PNG_MAGIC) and png.stat().st_size > 5000
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "</svg>" in text
    return text


def test_accuracy_figure_shows_intervals_and_the_papers_numbers(tmp_path, runs):
    records = [json.loads(p.read_text()) for p in runs[0]]
    labels = {"base": "Base", "dr_dft": "DR+DFT"}
    figure = figures.accuracy_figure(records, labels, ["alpha", "beta"], paper={"base": {"alpha": 30.0}})
    bars = [patch for patch in figure.axes[0].patches]
    assert len(bars) == 2 * 3  # 2 methods x (2 benchmarks + average)
    assert len({bar.get_hatch() for bar in bars}) == 2, "methods differ by hatch, not colour alone"
    assert bars[0].get_height() == pytest.approx(100 * records[0]["accuracy"])
    svg = written(tmp_path, figure, "accuracy")
    assert "paper (mean_acc)" in svg and "DR+DFT" in svg and "average" in svg


def test_curves_figure(tmp_path, runs):
    curves = evaluation_curves(runs[1])
    figure = figures.curves_figure(curves, {"base": "Base", DR_DFT: "DR+DFT"}, ["alpha", "beta"])
    lines = figure.axes[0].lines
    assert [len(line.get_xdata()) for line in lines] == [6, 6]
    assert lines[0].get_marker() != lines[1].get_marker() and lines[0].get_linestyle() != lines[1].get_linestyle()
    assert list(lines[1].get_ydata()) == pytest.approx([100 * v for v in curves[(DR_DFT, "alpha")]["pass"]])
    assert "maj@k" in written(tmp_path, figure, "curves")


def test_sources_figure_over_datasets_and_rounds(tmp_path):
    counts = {"expert": {"expert": 6}, "rewritten round 1": {"self": 2, "guided": 1, "expert": 3},
              "rewritten round 2": {"self": 4, "guided": 1, "expert": 1}}
    figure = figures.sources_figure(counts)
    bars = figure.axes[0].patches
    assert len(bars) == 3 * 3 and len({b.get_hatch() for b in bars}) == 3
    assert [b.get_width() for b in bars[:3]] == [0, 2, 4], "self rows per dataset"
    svg = written(tmp_path, figure, "sources")
    assert "rewritten round 2" in svg and "4 (67%)" in svg


def test_policy_gap_figure(tmp_path):
    rows = gap_rows()
    figure = figures.policy_gap_figure(rows)
    left, right = figure.axes
    assert len(left.patches) == 6  # kept and expert boxes for three sources
    assert {p.get_hatch() for p in left.patches} == {None, "///"} or {p.get_hatch() for p in left.patches} == {
        "", "///"}
    svg = written(tmp_path, figure, "gap")
    for text in ("kept response", "expert solution", "self", "guided", "log-ratio"):
        assert text in svg
    assert len(figure.axes) == 2, "no checkpoint scores: no third panel"
    # the stage's checkpoint summaries: per source, the distribution of each row's shift (checkpoint - base)
    shifts = {label: {"sources": {"self": {"kept_delta": {"mean": 0.1 * i}},
                                  "guided": {"kept_delta": {"mean": 0.2}}, "expert": {"kept_delta": {"mean": None}},
                                  "all": {"expert_delta": {"mean": -0.3 * i}}}}
              for i, label in enumerate(["SFT", "DR+DFT"], start=1)}
    figure = figures.policy_gap_figure(rows, shifts)
    shift = figure.axes[2]
    assert [bar.get_height() for bar in shift.patches] == pytest.approx([0.1, 0.2, 0.2, 0.2, -0.3, -0.6])
    assert len({bar.get_hatch() for bar in shift.patches}) == 3
    assert "How far training moved the policy" in written(tmp_path, figure, "gap_shift")
    expert_only = figures.policy_gap_figure(rows[rows["source"] == "expert"])
    assert "no behaviour policy" in written(tmp_path, expert_only, "gap_expert")


def test_training_figure(tmp_path):
    def history(scale):
        return [{"loss": 2.0 / step, "grad_norm": scale * step, "step": step, "weight_mean/self": 1.0,
                 "weight_var/self": 0.1 * scale, "weight_ess/self": 0.9, "weight_mean/expert": 0.4,
                 "weight_var/expert": 0.2, "weight_ess/expert": 0.5} for step in range(1, 5)] + [{"train_runtime": 1}]

    figure = figures.training_figure({"sft": history(1), "dr_is": history(2)}, {"sft": "SFT", "dr_is": "DR+IS"})
    loss, grad, mean, var, ess = figure.axes[:5]
    assert len(loss.lines) == 2 and len(var.lines) == 4  # 2 methods x 2 sources
    assert list(var.lines[2].get_ydata()) == pytest.approx([0.2] * 4)
    assert len({(line.get_marker(), str(line.get_linestyle())) for line in var.lines}) == 4, "grey scale"
    svg = written(tmp_path, figure, "training")
    assert "gradient norm" in svg and "token weight: ESS" in svg and "weights of guided rows" in svg
