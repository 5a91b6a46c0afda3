"""Results tables from metrics.json files, per model: methods x benchmarks (+ average) of the harness's mean_acc
(the metric of the paper's table) and the exact avg@n, with the paper's numbers and the difference when the model
is one of the paper's; then sample counts (truncation, grader statuses) and training weight statistics. Beside it,
every run in detail (avg@n with its interval, pass@k, maj@k, grader statuses per benchmark) and the training data
per source (with the policy-gap summary). Markdown, CSV, LaTeX, and HTML for the Snakemake report."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from mindthegap import metrics
from mindthegap.io import DataError
from mindthegap.rounds import BASE, run_id

PAPER_BENCHMARKS = ("math500", "minerva_math", "olympiadbench", "aime24", "amc23")
OURS = " (ours)"  # appended to the label of a method that is our extension, not the paper's
MEAN_ACC, PAPER, DIFF = "mean_acc", "paper", "Δ"  # the rows of one method (with avg@n): its "Metric" column


def problem_verdicts(judged: pd.DataFrame) -> tuple[list[list[bool]], list[list[Any]]]:
    """Per problem (sorted by id), its verdicts and extracted answers in sample order: what every metric reads."""
    groups = [g.sort_values("sample_idx") for _, g in judged.groupby("problem_id", sort=True)]
    return ([g["correct"].astype(bool).tolist() for g in groups], [g["extracted"].tolist() for g in groups])


def evaluation_metrics(judged: pd.DataFrame, *, model: str, method: str, benchmark: str, round: int = 1,
                       seed: int | None = None) -> dict[str, Any]:
    """avg@n (a fraction), the harness's mean_acc and all_acc (%), and companions for one (run, benchmark); the run
    is (method, round, seed) (mindthegap.rounds; the base model: round 0, no seed)."""
    correct, answers = problem_verdicts(judged)
    n = min((len(c) for c in correct), default=0)
    low, high = metrics.bootstrap_ci(correct)
    mean_acc, all_acc = metrics.harness_mean_acc(correct)
    return {
        "model": model, "method": method, "round": round, "seed": seed, "benchmark": benchmark,
        "problems": len(correct), "samples": len(judged),
        "n": n, f"avg@{n}": metrics.avg_at_n(correct), "accuracy": metrics.avg_at_n(correct),
        "mean_acc": mean_acc, "all_acc": all_acc,
        f"pass@{n}": metrics.mean_pass_at_k(correct, n) if n else float("nan"),
        f"maj@{n}": metrics.maj_at_k(answers, correct, n) if n else float("nan"),
        "ci95": [low, high],
        "grader_status": dict(sorted(Counter(judged["status"]).items())),
        "finish_reason": dict(sorted(Counter(judged["finish_reason"]).items())),
        "truncated": int((judged["finish_reason"] == "length").sum()),
    }


# --- the paper's numbers -------------------------------------------------------------------------------------


def read_paper_results(path: str | Path) -> dict[tuple[str, str], dict[str, float]]:
    """The paper's table (data/paper/main_results.csv): (model, method) -> {benchmark: %, "average": %}."""
    table = pd.read_csv(path, dtype=str)
    expected = ["model", "method", *PAPER_BENCHMARKS, "average"]
    if table.columns.tolist() != expected:
        raise DataError(f"{path}: columns {table.columns.tolist()}, expected {expected}")
    results: dict[tuple[str, str], dict[str, float]] = {}
    for line, row in enumerate(table.to_dict("records"), start=2):
        key = (row["model"], row["method"])
        if key in results:
            raise DataError(f"{path}, line {line}: {key} appears twice")
        try:
            results[key] = {column: float(row[column]) for column in expected[2:]}
        except (TypeError, ValueError) as exc:
            raise DataError(f"{path}, line {line}: every value of {expected[2:]} must be a number") from exc
    return results


def _name_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.rstrip("/").rsplit("/", 1)[-1].lower())


def paper_model(names: Iterable[str | None], paper_models: Iterable[str]) -> str | None:
    """The paper's name of a config model, matched on its hub path or its config key without case or punctuation
    (`Qwen/Qwen2.5-Math-7B` or `qwen25_math_7b` -> Qwen2.5-Math-7B); None when it is not one of the paper's."""
    known = {_name_key(model): model for model in paper_models}
    return next((known[_name_key(name)] for name in names if name and _name_key(name) in known), None)


# --- tables --------------------------------------------------------------------------------------------------


def shown_labels(methods: dict[str, str], extensions: Iterable[str] = ()) -> dict[str, str]:
    """Method key -> the label a table shows: our extensions get "(ours)"."""
    extensions = set(extensions)
    return {method: label + OURS if method in extensions else label for method, label in methods.items()}


def _read_metrics(path: str | Path) -> dict[str, Any]:
    record = json.loads(Path(path).read_text())
    if "mean_acc" not in record:
        raise DataError(f"{path}: no mean_acc (written by an older version): rerun with --forcerun evaluate_judge")
    return record


def _row(method: str, kind: str, values: dict[str, float], average: float | None = None) -> dict[str, Any]:
    """One table row; Average = the unweighted mean of the benchmarks (NaN when one is missing)."""
    if average is None:
        average = sum(values.values()) / len(values) if values else float("nan")
    return {"Method": method, "Metric": kind, **values, "Average": average}


def run_key(record: dict[str, Any]) -> tuple[int, str]:
    """(round, method) of a metrics record: the base model is round 0; records without a round (written before
    rounds existed) are round 1."""
    return (0 if record["method"] == "base" else int(record.get("round", 1)), record["method"])


def round_label(label: str, round_: int) -> str:
    """Rounds >= 2 are named in the label ("DR+DFT (round 2)"); round 1 (the paper's) and the base model are not."""
    return f"{label} (round {round_})" if round_ >= 2 else label


def run_label(labels: dict[str, str], run: Any, *, with_seed: bool) -> str:
    """A trained run's label: its method's, its round when >= 2, and its seed when there are several."""
    label = round_label(labels[run.method], run.round)
    return f"{label} seed {run.seed}" if with_seed else label


def _grouped(metric_files: list[str | Path], methods: dict[str, str]) -> dict[tuple[int, str], list[dict]]:
    """(round, method) -> its records (every seed, every benchmark), in table order: base and round 1 in config
    order, then each later round in config order."""
    groups: dict[tuple[int, str], list[dict]] = {}
    for record in map(_read_metrics, metric_files):
        if record["method"] in methods:
            groups.setdefault(run_key(record), []).append(record)
    order = list(methods)
    return {key: groups[key] for key in sorted(groups, key=lambda k: (max(k[0], 1), order.index(k[1])))}


def _by_seed(records: list[dict], field: str, scale: float = 1.0) -> dict[Any, dict[str, float]]:
    """seed -> {benchmark: value} of one (round, method)."""
    table: dict[Any, dict[str, float]] = {}
    for record in records:
        table.setdefault(record.get("seed"), {})[record["benchmark"]] = scale * record[field]
    return table


def _seed_mean(per_seed: dict[Any, dict[str, float]], benchmarks: list[str]) -> dict[str, float]:
    return {bench: _mean([values.get(bench, math.nan) for values in per_seed.values()]) for bench in benchmarks}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _sd(values: list[float]) -> float:
    """The sample standard deviation (n - 1): the spread of a method across its training seeds."""
    if len(values) < 2:
        return math.nan
    mean = _mean(values)
    return math.sqrt(sum((value - mean) ** 2 for value in values) / (len(values) - 1))


def _average(values: dict[str, float]) -> float:
    return sum(values.values()) / len(values) if values else math.nan


SEED_SD, SAMPLING_CI = "sd (seeds)", "±CI95 (sampling)"  # the rows added when a method has several seeds


def _seed_rows(shown: str, records: list[dict], benchmarks: list[str]) -> list[dict[str, Any]]:
    """With several training seeds: the spread of avg@n (%) across seeds (sample sd; Average: the sd of the seeds'
    averages) beside the sampling interval (the mean half-width of each seed's bootstrap 95 % CI of avg@n), so the
    reader sees whether seeds differ by more than the evaluation's own noise."""
    per_seed = _by_seed(records, "accuracy", 100.0)
    if len(per_seed) < 2:
        return []
    spread = {bench: _sd([values.get(bench, math.nan) for values in per_seed.values()]) for bench in benchmarks}
    averages = [sum(values.get(b, math.nan) for b in benchmarks) / len(benchmarks) for values in per_seed.values()]
    half_widths: dict[str, list[float]] = {bench: [] for bench in benchmarks}
    for record in records:
        if record["benchmark"] in half_widths and record.get("ci95"):
            low, high = record["ci95"]
            half_widths[record["benchmark"]].append(100 * (high - low) / 2)
    interval = {bench: _mean(widths) for bench, widths in half_widths.items()}
    return [_row(shown, SEED_SD, spread, _sd(averages)), _row(shown, SAMPLING_CI, interval, math.nan)]


def results_table(metric_files: list[str | Path], methods: dict[str, str], benchmarks: list[str], *,
                  paper: dict[tuple[str, str], dict[str, float]] | None = None, model: str | None = None,
                  extensions: Iterable[str] = ()) -> pd.DataFrame:
    """Per (round, method) (config order, key -> label): its mean_acc and avg@n rows in %, averaged over its
    training seeds; with several seeds, their spread beside the sampling interval (_seed_rows); then, for the
    paper's round (1) when `model` (the paper's name of this model) has the method in `paper`, the paper's row and
    the difference ours - paper of mean_acc. Methods in `extensions` are labelled "(ours)" and never compared;
    rounds >= 2 are labelled with their round and never compared."""
    groups = _grouped(metric_files, methods)
    sizes = sorted({r["n"] for records in groups.values() for r in records})
    avg_row = f"avg@{sizes[0]}" if len(sizes) == 1 else "avg@n"
    extensions = set(extensions)
    labels = shown_labels(methods, extensions)
    keys = list(groups) or [(0 if m == "base" else 1, m) for m in methods]  # no records: one empty row per method
    rows = []
    for round_, method in keys:
        records = groups.get((round_, method), [])
        mean_acc = _seed_mean(_by_seed(records, "mean_acc"), benchmarks)
        avg = _seed_mean(_by_seed(records, "accuracy", 100.0), benchmarks)
        shown = round_label(labels[method], round_)
        ours = _row(shown, MEAN_ACC, mean_acc)
        rows += [ours, _row(shown, avg_row, avg), *_seed_rows(shown, records, benchmarks)]
        published = (paper or {}).get((model, methods[method])) if method not in extensions and round_ <= 1 else None
        if published:
            whole_grid = sorted(benchmarks) == sorted(PAPER_BENCHMARKS)
            theirs = _row(shown, PAPER, {b: published.get(b, math.nan) for b in benchmarks},
                          published["average"] if whole_grid else None)
            rows.append(theirs)
            rows.append(_row(shown, DIFF, {b: ours[b] - theirs[b] for b in benchmarks},
                             ours["Average"] - theirs["Average"]))
    return pd.DataFrame(rows, columns=["Method", "Metric", *benchmarks, "Average"])


def sample_counts(metric_files: list[str | Path], methods: dict[str, str], extensions: Iterable[str] = ()
                  ) -> pd.DataFrame:
    """Per (round, method), summed over its benchmarks and seeds: samples, those cut at the token limit, prompts
    too long for the context (not sampled), and the grader's verdict statuses."""
    from mindthegap.grading import STATUSES

    labels = shown_labels(methods, extensions)
    groups = _grouped(metric_files, methods)
    totals: dict[tuple[int, str], Counter] = {key: Counter() for key in groups}
    for key, records in groups.items():
        for record in records:
            finish = record.get("finish_reason", {})
            totals[key].update({"samples": record["samples"], "truncated": record["truncated"],
                                "prompt too long": finish.get("prompt_too_long", 0), **record["grader_status"]})
    extra = sorted({key for counts in totals.values() for key in counts} - {"samples", "truncated",
                                                                           "prompt too long", *STATUSES})
    columns = ["samples", "truncated", "prompt too long", *STATUSES, *extra]
    rows = [{"Method": round_label(labels[method], round_),
             **{column: int(totals[(round_, method)].get(column, 0)) for column in columns}}
            for round_, method in totals]
    return pd.DataFrame(rows, columns=["Method", *columns])


def rounds_table(metric_files: list[str | Path], stats: dict[tuple[int, str], dict[str, Any]],
                 methods: dict[str, dict[str, Any]], extensions: Iterable[str] = ()) -> pd.DataFrame:
    """Accuracy and source composition by round: per (round, method), its seeds, mean_acc and avg@n averaged over
    the benchmarks and seeds, the seeds' sd of avg@n, and the share of self / guided / expert rows in the data it
    trained on (`stats`: (round, variant) -> that dataset's stats.json; `methods`: key -> {label, data})."""
    labels = shown_labels({m: spec["label"] for m, spec in methods.items()}, extensions)
    rows = []
    for (round_, method), records in _grouped(metric_files, labels).items():
        averages = {}
        for field, scale in (("mean_acc", 1.0), ("accuracy", 100.0)):
            per_seed = _by_seed(records, field, scale)
            averages[field] = [_mean(list(values.values())) for values in per_seed.values()]
        data = methods[method].get("data")
        sources = stats.get((round_, data), {}).get("sources", {}) if data else {}
        total = sum(sources.values())
        rows.append({"round": round_, "method": method, "Method": labels[method], "data": data or "",
                     "seeds": len(averages["accuracy"]), "mean_acc": _mean(averages["mean_acc"]),
                     "avg@n": _mean(averages["accuracy"]), "sd (seeds)": _sd(averages["accuracy"]),
                     **{f"{source} %": 100 * sources.get(source, 0) / total if total else math.nan
                        for source in ("self", "guided", "expert")}})
    return pd.DataFrame(rows, columns=["round", "method", "Method", "data", "seeds", "mean_acc", "avg@n",
                                       "sd (seeds)", "self %", "guided %", "expert %"])


def write_rounds(table: pd.DataFrame, stats: dict[tuple[int, str], dict[str, Any]], csv: str | Path,
                 json_path: str | Path, settings: dict[str, Any]) -> None:
    """The by-round table as CSV, and as JSON with each round's dataset stats and the rounds' settings (what the
    figures read)."""
    from mindthegap.io import write_json, write_text

    write_text(table.round(4).to_csv(index=False), csv)
    records = json.loads(table.to_json(orient="records"))  # NaN -> null
    write_json({"settings": settings, "runs": records,
                "datasets": [{"round": r, "variant": v, **s} for (r, v), s in sorted(stats.items())]}, json_path)


def _latex_text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    return r"$\Delta$" if value == DIFF else value.replace("_", r"\_").replace("%", r"\%")


COUNTS_TITLE = "Samples: cut at the token limit, prompts too long, grader statuses (all benchmarks)"
ROUNDS_TITLE = "Rounds: accuracy (%, mean over benchmarks and seeds) and training-data sources (%)"
WEIGHTS_TITLE = "Training: token weights per source (w = 1 for SFT; p for DFT; clipped ratio for IS)"


def write_tables(table: pd.DataFrame, model: str, markdown: str | Path, csv: str | Path, latex: str | Path, *,
                 paper_name: str | None = None, counts: pd.DataFrame | None = None,
                 diagnostics: pd.DataFrame | None = None, rounds: pd.DataFrame | None = None,
                 html: str | Path | None = None) -> None:
    from mindthegap.io import write_text

    avg_row = next(kind for kind in table["Metric"].unique() if kind.startswith("avg@"))
    notes = [f"`{MEAN_ACC}`: the Qwen2.5-Math harness's metric, the one in the paper's table (each sample column's "
             f"accuracy rounded to 0.1, then averaged); `{avg_row}`: the exact mean over all samples."]
    if paper_name:
        notes.append(f"`{PAPER}`: {paper_name} in the paper's table (data/paper/main_results.csv); `{DIFF}` = ours "
                     f"- paper, on {MEAN_ACC}.")
    if table["Method"].str.endswith(OURS).any():
        notes.append(f"Methods marked{OURS} are our extensions, not in the paper.")
    if (table["Metric"] == SEED_SD).any():
        notes.append(f"Values are means over the training seeds; `{SEED_SD}`: their sample sd of {avg_row}; "
                     f"`{SAMPLING_CI}`: the mean half-width of each seed's bootstrap 95 % interval of {avg_row}.")
    if table["Method"].str.contains(r" \(round \d+\)$").any():
        notes.append("Rows marked (round r) were trained on data rewritten by a round r-1 model (ours; the paper "
                     "has one offline round).")
    text = (f"### {model}: accuracy (%)\n\n" + " ".join(notes) + "\n\n"
            + table.to_markdown(index=False, floatfmt=".2f", missingval="–") + "\n")
    if counts is not None and len(counts):
        text += (f"\n### {COUNTS_TITLE}\n\n"
                 + counts.to_markdown(index=False) + "\n")
    shown_rounds = None
    if rounds is not None and len(rounds) and rounds["round"].max() >= 2:
        shown_rounds = rounds.drop(columns=["method"])
        shown_rounds = shown_rounds.astype(object).where(shown_rounds.notna(), None)  # NaN (no spread) shows as –
        text += (f"\n### {ROUNDS_TITLE}\n\n"
                 + shown_rounds.to_markdown(index=False, floatfmt=".2f", missingval="–") + "\n")
    if diagnostics is not None and len(diagnostics):
        text += (f"\n### {WEIGHTS_TITLE}\n\n"
                 + diagnostics.to_markdown(floatfmt=".4g") + "\n")
    write_text(text, markdown)
    if html is not None:
        write_text(html_page([(f"{model}: accuracy (%)", " ".join(notes).replace("`", ""), table),
                              (COUNTS_TITLE, "", counts),
                              (ROUNDS_TITLE, "", shown_rounds),
                              (WEIGHTS_TITLE, "", None if diagnostics is None else diagnostics.reset_index(), ".4g")]),
                   html)
    write_text(table.round(4).to_csv(index=False), csv)
    rendered = table.map(_latex_text).rename(columns=_latex_text)
    write_text(rendered.to_latex(index=False, float_format="%.2f", na_rep="--",
                                 caption=f"{_latex_text(model)}: accuracy (\\%)"), latex)


def training_diagnostics(checkpoints: dict[str, str | Path], labels: dict[str, str]) -> pd.DataFrame:
    """Per trained method: steps, mean training loss, and the token-weight statistics per source (averaged over
    the logged steps). Under IS, the weight variance per source is the quantity the paper says rewriting shrinks.

    Each logged entry averages the steps since the previous one (windows are shorter where a checkpoint closed
    one), so it counts that many steps; an entry without a `step` counts one."""
    rows = []
    for method, directory in checkpoints.items():
        record = json.loads((Path(directory) / "training_log.json").read_text())
        logged = [entry for entry in record["log_history"] if "loss" in entry]
        ends = [entry.get("step") for entry in logged]
        steps = [end - start if None not in (start, end) else 1 for start, end in zip([0, *ends], ends)]
        row = {"Method": labels[method], "steps": record["summary"]["global_steps"],
               "train loss": record["summary"]["train_loss"]}
        keys = sorted({key for entry in logged for key in entry if key.startswith("weight_")})
        for key in keys:
            weighted = [(entry[key], window) for entry, window in zip(logged, steps) if key in entry]
            row[key.replace("weight_", "w ").replace("/", " ")] = (sum(value * window for value, window in weighted)
                                                                   / sum(window for _, window in weighted))
        rows.append(row)
    return pd.DataFrame(rows).set_index("Method")


# --- the evaluation in detail, the training data per source --------------------------------------------------


def eval_file_key(path: str | Path) -> tuple[str, str]:
    """(run, benchmark) of an `eval/{model}/{run}/{bench}/verdicts.parquet` or `.../metrics.json` path; the run is
    `base` or `round{r}/{method}/seed{s}` (mindthegap.rounds)."""
    parts = Path(path).parts
    run = parts[-3] if parts[-3] == BASE else "/".join(parts[-5:-2])
    return run, parts[-2]


def record_run(record: dict[str, Any]) -> str:
    """The run id of a metrics record (records without a round or seed, written before rounds: round 1)."""
    return run_id(record.get("round") or 1, record["method"], record.get("seed"))


def evaluation_curves(verdict_files: Iterable[str | Path]) -> dict[tuple[str, str], dict[str, list[float]]]:
    """(run, benchmark) -> pass@k and maj@k for k = 1..n (fractions), from each run's per-sample verdicts."""
    curves = {}
    for path in verdict_files:
        correct, answers = problem_verdicts(pd.read_parquet(path))
        curves[eval_file_key(path)] = {"pass": metrics.pass_at_k_curve(correct),
                                 "maj": metrics.maj_at_k_curve(answers, correct)}
    return curves


def shown_ks(n: int) -> list[int]:
    """The k of pass@k and maj@k that a table shows: powers of two up to n, and n itself."""
    return sorted({2 ** i for i in range(n.bit_length()) if 2 ** i <= n} | {n}) if n else []


def evaluation_detail(metric_files: list[str | Path], curves: dict[tuple[str, str], dict[str, list[float]]],
                      methods: dict[str, str], benchmarks: list[str], extensions: Iterable[str] = ()
                      ) -> pd.DataFrame:
    """One row per (run, benchmark): avg@n with its 95 % bootstrap interval, the harness's mean_acc, pass@k and
    maj@k at k = 1, 2, 4, .., n (%), samples cut at the token limit and the grader's statuses. `methods`: run id
    (`base`, `round{r}/{method}/seed{s}`) -> its label, in table order."""
    from mindthegap.grading import STATUSES

    labels = shown_labels(methods, extensions)
    records = {(record_run(r), r["benchmark"]): r for r in map(_read_metrics, metric_files)}
    n = max((r["n"] for r in records.values()), default=0)
    rows = []
    for method in methods:
        for bench in benchmarks:
            record, curve = records.get((method, bench)), curves.get((method, bench), {"pass": [], "maj": []})
            if record is None:
                continue
            low, high = record["ci95"]
            row = {"Method": labels[method], "Benchmark": bench, "problems": record["problems"], "n": record["n"],
                   "avg@n": 100 * record["accuracy"], "CI low": 100 * low, "CI high": 100 * high,
                   "mean_acc": record["mean_acc"]}
            for kind in ("pass", "maj"):
                for k in shown_ks(n):
                    row[f"{kind}@{k}"] = 100 * curve[kind][k - 1] if k <= len(curve[kind]) else math.nan
            row["truncated"] = record["truncated"]
            row.update({status: record["grader_status"].get(status, 0) for status in STATUSES})
            rows.append(row)
    return pd.DataFrame(rows)


SOURCES = ("self", "guided", "expert")


def _number(value: Any) -> float:
    """A summary's statistic, NaN where it has none (None: no finite value to describe)."""
    return math.nan if value is None else float(value)


def source_table(datasets: dict[str, tuple[pd.DataFrame, dict[str, Any]]],
                 gap: dict[str, Any] | None = None, gap_variant: str = "rewritten") -> pd.DataFrame:
    """One row per (dataset, source): rows and their share, the accuracy of the phase that produced the source's
    samples (self: the model alone; guided: with the hint), completion lengths, and, for the dataset the
    policy-gap stage scored, its summary: mean token log-prob of the kept response and of the expert solution
    of the same problems under the base model, and the spread of the token log-ratio (training prompt vs the
    behaviour policy). `datasets`: label -> (the dataset's rows, its stats.json); a label may name a round."""
    rows = []
    for label, (frame, stats) in datasets.items():
        for source in SOURCES:
            kept = frame[frame["source"] == source]
            if kept.empty:
                continue
            phase = stats.get(f"{source}_samples", {})
            tokens = kept["completion_token_ids"].dropna().map(len) if "completion_token_ids" in kept else []
            row = {"Dataset": label, "Source": source, "rows": len(kept),
                   "share %": 100 * len(kept) / len(frame) if len(frame) else math.nan,
                   "phase samples": phase.get("samples", math.nan),
                   "phase accuracy %": 100 * phase["accuracy"] if "accuracy" in phase else math.nan,
                   "chars (mean)": kept["completion"].str.len().mean() if len(kept) else math.nan,
                   "tokens (mean)": float(tokens.mean()) if len(tokens) else math.nan}
            summary = (gap or {}).get("sources", {}).get(source) if label == gap_variant else None
            if summary and summary.get("rows"):
                row.update({"tokens (mean)": _number(summary["kept"]["tokens"]["mean"]),
                            "kept logp/token": _number(summary["kept"]["logprob_mean"]["mean"]),
                            "expert logp/token": _number(summary["expert"]["logprob_mean"]["mean"]),
                            "kept ppl (median)": _number(summary["kept"]["perplexity"]["median"]),
                            # expert rows have no behaviour policy, hence no log-ratio
                            "log-ratio var": _number(summary.get("logratio", {}).get("var"))})
            rows.append(row)
    return pd.DataFrame(rows)


def html_page(sections: list[tuple], floatfmt: str = ".2f") -> str:
    """A small standalone HTML page of (title, note, table) sections: how the Snakemake report shows a table
    (it displays HTML and images, and offers other files only as downloads)."""
    from html import escape

    style = ("body{font-family:sans-serif;font-size:12px;margin:1em}table{border-collapse:collapse;margin:.5em 0 "
             "1.5em}th,td{border:1px solid #999;padding:2px 5px;text-align:right;white-space:nowrap}"
             "th{background:#eee}td:nth-child(-n+2),th:nth-child(-n+2){text-align:left}p{max-width:60em}")
    body = ""
    for title, note, table, *own_format in sections:  # a section may carry its own number format
        if table is not None and len(table):
            fmt = own_format[0] if own_format else floatfmt
            body += (f"<h3>{escape(title)}</h3><p>{escape(note)}</p>"
                     + table.to_html(index=False, na_rep="–", float_format=lambda v, f=fmt: format(v, f), border=0))
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{style}</style></head><body>{body}</body></html>\n"


def write_table_formats(table: pd.DataFrame, title: str, note: str, markdown: str | Path, csv: str | Path,
                        latex: str | Path, html: str | Path | None = None, floatfmt: str = ".2f") -> None:
    """One table as Markdown (a title and a note on what it shows), CSV, LaTeX (the title as caption) and,
    for the report, HTML."""
    from mindthegap.io import write_text

    if html is not None:
        write_text(html_page([(title, note, table)], floatfmt), html)
    missing_as_none = table.astype(object).where(table.notna(), None)  # tabulate's missingval replaces None only
    write_text(f"### {title}\n\n{note}\n\n"
               + missing_as_none.to_markdown(index=False, floatfmt=floatfmt, missingval="–") + "\n", markdown)
    write_text(table.round(4).to_csv(index=False), csv)
    rendered = table.map(_latex_text).rename(columns=_latex_text)
    write_text(rendered.to_latex(index=False, float_format=f"%{floatfmt}", na_rep="--",
                                 caption=_latex_text(title)), latex)


PROVENANCE_PACKAGES = ("torch", "transformers", "trl", "accelerate", "datasets", "tokenizers", "sympy",
                       "latex2sympy2", "snakemake", "vllm", "mindthegap")


def provenance(config: dict[str, Any], outputs: list[str], repo: str | Path) -> dict[str, Any]:
    """What produced these results: the config, package versions, the code's git commit, the host."""
    import platform
    import subprocess
    from datetime import datetime, timezone
    from importlib import metadata

    versions = {}
    for package in PROVENANCE_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    git = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True)
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git.stdout.strip() or None, "git_dirty": bool(dirty.stdout.strip()) if git.stdout else None,
        "python": platform.python_version(), "host": platform.node(), "packages": versions,
        "outputs": outputs, "config": config,
    }
