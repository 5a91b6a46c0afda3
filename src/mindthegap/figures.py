"""The figures of the paper's argument, drawn with matplotlib (Agg: no display needed), each written as PNG (for
the Snakemake report) and SVG (vector, for a paper): accuracy per benchmark and method with 95 % intervals beside
the paper's numbers, pass@k and maj@k curves, the source composition of the rewritten data, the policy gap per
source, and the training curves per method.

Every figure stays readable in grey scale: series differ by marker, line style or hatch, never by colour alone."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mindthegap.io import atomic_path  # noqa: E402

# Okabe-Ito colours (colour-blind safe), in an order whose lightness alternates; markers, line styles and hatches
# carry the distinction in grey scale.
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))
HATCHES = ("", "///", "...", "xxx", "\\\\\\", "ooo", "---", "+++")
SOURCE_STYLE = {"self": 0, "guided": 1, "expert": 2}  # one style index per data source, in every figure

# svg.fonttype none: SVG text stays text (searchable, editable); the hash salt makes SVG ids reproducible.
plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8, "figure.dpi": 100,
                     "savefig.dpi": 150, "svg.hashsalt": "mindthegap", "svg.fonttype": "none", "axes.grid": True,
                     "grid.alpha": 0.3})


def style(index: int) -> dict[str, Any]:
    """Line style of the index-th series: colour, marker and dash pattern all change with it."""
    return {"color": COLOURS[index % len(COLOURS)], "marker": MARKERS[index % len(MARKERS)],
            "linestyle": LINESTYLES[index % len(LINESTYLES)]}


def bar_style(index: int) -> dict[str, Any]:
    return {"color": COLOURS[index % len(COLOURS)], "hatch": HATCHES[index % len(HATCHES)], "edgecolor": "black",
            "linewidth": 0.6}


def save(figure, png: str | Path, vector: str | Path) -> None:
    """Write the figure atomically as PNG and as a vector file (its format from the suffix), then close it.
    SVG metadata is fixed (no date), so the same inputs give the same file."""
    for path in (png, vector):
        with atomic_path(path) as tmp:
            suffix = Path(path).suffix.lstrip(".")
            metadata = {"Date": None} if suffix == "svg" else {}
            figure.savefig(tmp, format=suffix, bbox_inches="tight", metadata=metadata)
    plt.close(figure)


def _message(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_axis_off()


# --- evaluation ------------------------------------------------------------------------------------------------


def accuracy_figure(records: Sequence[dict[str, Any]], labels: dict[str, str], benchmarks: Sequence[str], *,
                    paper: dict[str, dict[str, float]] | None = None, title: str = "", average: bool = True):
    """Grouped bars: avg@n (%) per benchmark (and, with `average`, their unweighted average) for each method,
    with the 95 % bootstrap interval as error bars; the paper's number for the same method as a black diamond
    (`paper`: method -> {benchmark: %}, only for methods the paper has). `records`: metrics.json contents."""
    by_run = {(r["method"], r["benchmark"]): r for r in records}
    average = average and len(benchmarks) > 1  # the average of one benchmark is that benchmark
    groups = [*benchmarks, "average"] if average else list(benchmarks)
    methods = list(labels)
    figure, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(groups) * max(1, len(methods)) / 3 + 2), 3.8))
    width = 0.8 / max(1, len(methods))
    x = np.arange(len(groups))
    paper_shown = False
    for i, method in enumerate(methods):
        runs = [by_run.get((method, bench)) for bench in benchmarks]
        values = [100 * r["accuracy"] if r else math.nan for r in runs]
        low = [100 * r["ci95"][0] if r else math.nan for r in runs]
        high = [100 * r["ci95"][1] if r else math.nan for r in runs]
        if average:
            values.append(float(np.mean(values)))
            low.append(math.nan)
            high.append(math.nan)
        errors = np.array([[v - lo if not math.isnan(lo) else 0 for v, lo in zip(values, low)],
                           [hi - v if not math.isnan(hi) else 0 for v, hi in zip(values, high)]])
        position = x - 0.4 + width * (i + 0.5)
        ax.bar(position, values, width, yerr=errors, capsize=2, label=labels[method], error_kw={"linewidth": 0.8},
               **bar_style(i))
        theirs = (paper or {}).get(method)
        if theirs:
            points = [theirs.get(bench, math.nan) for bench in benchmarks] + (
                [theirs.get("average", math.nan)] if average else [])
            ax.plot(position, points, linestyle="none", marker="D", markersize=5, markerfacecolor="white",
                    markeredgecolor="black", label=None if paper_shown else "paper (mean_acc)")
            paper_shown = True
    ax.set_xticks(x, groups, rotation=20 if len(groups) > 4 else 0)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title or "Accuracy per benchmark (avg@n, 95 % bootstrap interval)")
    ax.legend(ncol=min(4, len(methods) + paper_shown), loc="upper center", bbox_to_anchor=(0.5, -0.15),
              frameon=False)
    return figure


def curves_figure(curves: dict[tuple[str, str], dict[str, list[float]]], labels: dict[str, str],
                  benchmarks: Sequence[str], *, title: str = ""):
    """pass@k (top row, unbiased estimator) and maj@k (bottom row) for k = 1..n, one column per benchmark, one
    line per method (distinct marker and dash)."""
    columns = max(1, len(benchmarks))
    figure, axes = plt.subplots(2, columns, figsize=(3.2 * columns + 0.5, 5.6), squeeze=False, sharey="row")
    for col, bench in enumerate(benchmarks):
        for row, (kind, name) in enumerate((("pass", "pass@k"), ("maj", "maj@k"))):
            ax = axes[row][col]
            for i, (method, label) in enumerate(labels.items()):
                values = curves.get((method, bench), {}).get(kind, [])
                if values:
                    ax.plot(range(1, len(values) + 1), [100 * v for v in values], label=label, markersize=4,
                            **style(i))
            ax.set_xlabel("k")
            ax.set_title(f"{bench}: {name}")
            if col == 0:
                ax.set_ylabel(f"{name} (%)")
            ax.xaxis.get_major_locator().set_params(integer=True)
    handles, names = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, names, ncol=min(6, 2 * columns + 1, max(1, len(names))), loc="lower center", frameon=False,
                  bbox_to_anchor=(0.5, -0.04))
    figure.suptitle(title or "pass@k and maj@k over the n evaluation samples")
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    return figure


# --- data ------------------------------------------------------------------------------------------------------


def sources_figure(datasets: dict[str, dict[str, int]], *, title: str = ""):
    """Stacked horizontal bars, one per dataset (a variant, or a variant at a rewriting round): how many training
    rows came from self-solving, guided re-solving and the expert, with their counts and shares written on."""
    names = list(datasets)
    figure, ax = plt.subplots(figsize=(7, 0.6 * len(names) + 1.6))
    left = np.zeros(len(names))
    totals = np.array([sum(datasets[name].values()) for name in names], dtype=float)
    for source, index in SOURCE_STYLE.items():
        counts = np.array([datasets[name].get(source, 0) for name in names], dtype=float)
        bars = ax.barh(names, counts, left=left, label=source, **bar_style(index))
        for bar, count, total in zip(bars, counts, totals):
            if count:
                ax.text(bar.get_x() + bar.get_width() / 2, bar.get_y() + bar.get_height() / 2,
                        f"{int(count)} ({100 * count / total:.0f}%)", ha="center", va="center", fontsize=8,
                        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.8, "linewidth": 0})
        left += counts
    ax.invert_yaxis()
    ax.set_xlabel("training rows")
    ax.set_title(title or "Where the training rows come from")
    ax.legend(ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.25 if len(names) < 3 else -0.12),
              frameon=False)
    return figure


# --- the policy gap --------------------------------------------------------------------------------------------


def policy_gap_figure(rows: pd.DataFrame, shifts: dict[str, dict[str, Any]] | None = None, *, title: str = ""):
    """Left: per source, the mean token log-prob under the base model of the kept response (plain boxes) beside
    the expert solution of the same problems (hatched); the higher and tighter the kept boxes, the smaller the
    gap between the training data and the model. Middle: per sampled source, the token-level log-ratio
    log pi_base(training prompt) - log pi_behaviour; its spread is the importance weights' variance. Right, when
    the checkpoints were scored too (`shifts`: method label -> the stage's checkpoint summary): how far each
    method moved the mean token log-prob of the self and guided responses and of the expert solutions."""
    panels = 3 if shifts else 2
    figure, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.8),
                                gridspec_kw={"width_ratios": [3, 2, 3][:panels]})
    left, right = axes[0], axes[1]
    sources = [s for s in SOURCE_STYLE if (rows["source"] == s).any()]
    data, positions, hatches, ticks = [], [], [], []
    for i, source in enumerate(sources):
        part = rows[rows["source"] == source]
        data += [part["kept_logprob_mean"].dropna(), part["expert_logprob_mean"].dropna()]
        positions += [3 * i, 3 * i + 1]
        hatches += ["", "///"]
        ticks.append((3 * i + 0.5, f"{source}\n({len(part)} rows)"))
    if data:
        boxes = left.boxplot(data, positions=positions, widths=0.8, patch_artist=True, showmeans=True,
                             meanprops={"marker": "^", "markerfacecolor": "white", "markeredgecolor": "black"},
                             medianprops={"color": "black"})
        for patch, hatch, position in zip(boxes["boxes"], hatches, positions):
            patch.set(facecolor=COLOURS[SOURCE_STYLE[sources[position // 3]]], hatch=hatch, alpha=0.8,
                      edgecolor="black")
        left.set_xticks([t for t, _ in ticks], [name for _, name in ticks])
        left.legend([plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="black"),
                     plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="black", hatch="///")],
                    ["kept response", "expert solution"], loc="best", frameon=True)
        left.set_ylabel("mean token log-prob under the base model")
        left.set_title("Kept vs expert responses")
    else:
        _message(left, "no rows")
    sampled = [s for s in sources if s != "expert"]
    ratios = [np.concatenate([np.asarray(r, dtype=float) for r in rows.loc[rows["source"] == s, "logratio"]
                              if r is not None and len(r)] or [np.array([])]) for s in sampled]
    ratios = [r[np.isfinite(r)] for r in ratios]  # a row the stage could not score has NaN
    if any(len(r) for r in ratios):
        boxes = right.boxplot(ratios, positions=range(len(sampled)), widths=0.6,
                              patch_artist=True, showfliers=False, whis=(5, 95), medianprops={"color": "black"})
        for patch, source in zip(boxes["boxes"], sampled):
            patch.set(facecolor=COLOURS[SOURCE_STYLE[source]], hatch=HATCHES[SOURCE_STYLE[source]],
                      edgecolor="black", alpha=0.8)
        right.set_xticks(range(len(sampled)),
                         [f"{s}\nvar {np.var(r):.3g} ({len(r)} tokens)" for s, r in zip(sampled, ratios)])
        right.axhline(0, color="black", linewidth=0.8, linestyle=":")
        right.set_ylabel("token log-ratio (whiskers: 5-95 %)")
        right.set_title("Base model vs behaviour policy")
    else:
        _message(right, "no sampled rows: no behaviour policy to compare")
    if shifts:
        checkpoint_shift_panel(axes[2], shifts)
    figure.suptitle(title or "Policy gap per source")
    figure.tight_layout()
    return figure


SHIFT_SERIES = (("self", "kept_delta", "self responses"), ("guided", "kept_delta", "guided responses"),
                ("all", "expert_delta", "expert solutions"))


def checkpoint_shift_panel(ax, shifts: dict[str, dict[str, Any]]) -> None:
    """Grouped bars, one group per trained method: the mean change (checkpoint - base model) of the mean token
    log-prob of the self and the guided responses and of the expert solutions of all rows."""
    methods = list(shifts)
    width = 0.8 / len(SHIFT_SERIES)
    for j, (source, key, name) in enumerate(SHIFT_SERIES):
        values = [(shifts[m]["sources"].get(source) or {}).get(key, {}).get("mean") for m in methods]
        ax.bar(np.arange(len(methods)) - 0.4 + width * (j + 0.5),
               [math.nan if v is None else v for v in values], width, label=name,
               **bar_style(SOURCE_STYLE[source] if source in SOURCE_STYLE else 2))
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(methods)), methods, rotation=20 if len(methods) > 3 else 0)
    ax.set_ylabel("change in mean token log-prob")
    ax.set_title("How far training moved the policy")
    ax.legend(loc="best", frameon=True)


# --- training --------------------------------------------------------------------------------------------------

TRAINING_PANELS = (("loss", "training loss"), ("grad_norm", "gradient norm"), ("weight_mean", "token weight: mean"),
                   ("weight_var", "token weight: variance"), ("weight_ess", "token weight: ESS"))


def training_figure(logs: dict[str, list[dict[str, Any]]], labels: dict[str, str], *, title: str = ""):
    """Per trained method (colour and marker), over optimizer steps: loss and gradient norm; then the token
    weights' mean, variance and effective sample size, one dash pattern per data source. `logs`: method ->
    log_history (the Trainer's entries with `step`, `loss`, `grad_norm`, `weight_<stat>/<source>`)."""
    figure, grid = plt.subplots(2, 3, figsize=(11, 6))
    axes = grid.flat
    for ax, (key, name) in zip(axes, TRAINING_PANELS):
        for i, (method, history) in enumerate(logs.items()):
            entries = [entry for entry in history if "loss" in entry and "step" in entry]
            if key in ("loss", "grad_norm"):
                series = {"": [(e["step"], e[key]) for e in entries if key in e]}
            else:
                series = {source: [(e["step"], e[f"{key}/{source}"]) for e in entries if f"{key}/{source}" in e]
                          for source in SOURCE_STYLE}
            for source, points in series.items():
                if points:
                    steps, values = zip(*points)
                    ax.plot(steps, values, markersize=3.5, linewidth=1.1, color=COLOURS[i % len(COLOURS)],
                            marker=MARKERS[i % len(MARKERS)], linestyle=LINESTYLES[SOURCE_STYLE.get(source, 0)])
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.xaxis.get_major_locator().set_params(integer=True)
        values = [v for line in ax.lines for v in line.get_ydata()]
        if values and min(values) > 0 and max(values) / min(values) > 20:  # e.g. rewritten data's far lower loss
            ax.set_yscale("log")
        if not ax.lines:
            _message(ax, f"no {name} logged")
    legend = axes[len(TRAINING_PANELS)]
    legend.set_axis_off()
    handles = [plt.Line2D([], [], color=COLOURS[i % len(COLOURS)], marker=MARKERS[i % len(MARKERS)],
                          label=labels.get(method, method)) for i, method in enumerate(logs)]
    handles += [plt.Line2D([], [], color="black", linestyle=LINESTYLES[i], label=f"weights of {source} rows")
                for source, i in SOURCE_STYLE.items()]
    legend.legend(handles=handles, loc="center", frameon=False, title="method (marker) / source (dashes)")
    figure.suptitle(title or "Training curves per method")
    figure.tight_layout()
    return figure


def read_training_logs(checkpoints: dict[str, str | Path]) -> dict[str, list[dict[str, Any]]]:
    """run (or method) -> its checkpoint's log_history from training_log.json."""
    import json

    return {run: json.loads((Path(c) / "training_log.json").read_text())["log_history"]
            for run, c in checkpoints.items()}
