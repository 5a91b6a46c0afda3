"""Training problems against the benchmarks: which ones a benchmark problem leaked into (DESIGN.md §1,
`contamination/{dataset}.json`).

Two checks on one normalised token sequence per problem:

- **exact**: the two token sequences are equal (the same problem, however it is typeset);
- **ngram**: the two share a run of `n` consecutive tokens (n = 8: the word 8-gram overlap of open-r1's
  `scripts/decontaminate.py`, itself from s1's `decontaminate_util.py`). open-r1 lowercases, collapses whitespace
  and splits on it; we tokenise further (below), so that re-typeset LaTeX still matches.

Normalisation (`tokens`), in this order:
1. Unicode NFKC (full-width digits, ligatures, non-breaking spaces become their plain forms), then lowercase;
2. LaTeX that changes only the typesetting is deleted: the math delimiters `$`, `\\(`, `\\)`, `\\[`, `\\]`; the
   spacing commands `\\,` `\\;` `\\:` `\\!` `\\ ` `~` `\\quad` `\\qquad`; the sizing and style commands `\\left`
   `\\right` `\\big` `\\Big` `\\bigl` ... `\\displaystyle` `\\textstyle`; `\\dfrac` and `\\tfrac` become `\\frac`;
3. braces are deleted (`x^{2}` and `x^2` agree); quotes, and sentence punctuation (`.` `,` `;` `:` `!` `?` where a
   space or the end follows) become a space, so "3.5" and "1,000" stay whole;
4. words are what whitespace separates (as open-r1), once LaTeX commands and brackets `( ) [ ] |` are words of
   their own and the spaces around the operators `+ - * / = < > ^ _` are removed: "2x+3" and "2x + 3" are one
   word, "f(x)" and "f (x)" are the same four.

NeMo-Skills checks contamination differently (sentence-embedding retrieval of the nearest training problems,
then an LLM judges each pair: `nemo_skills/inference/retrieve_similar.py`, `check_contamination.py`); that needs
a judge model and is not done here.

Fast at the paper's scale: every n-gram of every benchmark problem goes into one dict once, then each training
problem is one pass over its own n-grams (50k problems against the five benchmarks' 1,517: about 10 s,
benchmarks/decontamination/).
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from typing import Any

import pandas as pd

NGRAM = 8
CHECKS = ("exact", "ngram")

_DELETE = re.compile(
    r"\\(?:left|right|[bB]igg?[lrm]?|displaystyle|textstyle|scriptstyle|quad|qquad)(?![a-z])"  # sizing, style, quads
    r"|\\[,;:! ]"  # thin, medium, thick, negative and explicit spaces
    r"|\\[()\[\]]"  # \( \) \[ \] math delimiters
    r"|[$~]",
    re.IGNORECASE,
)
_FRAC = re.compile(r"\\[dt]frac(?![a-z])")
_SENTENCE_PUNCTUATION = re.compile(r"[.,;:!?]+(?=\s|$)|[{}\"`\u2018\u2019\u201c\u201d]|'(?!\w)|(?<!\w)'")
_APART = re.compile(r"(\\[a-z]+|[()\[\]|])")  # LaTeX commands and brackets: words of their own
_OPERATOR = re.compile(r"\s*([-+*/=<>^_])\s*")  # spacing around an operator: none


def tokens(text: str) -> list[str]:
    """The normalised words of a problem (the module doc says exactly what is normalised)."""
    text = unicodedata.normalize("NFKC", str(text)).lower()
    text = _APART.sub(r" \1 ", _FRAC.sub(r"\\frac", _DELETE.sub(" ", text)))
    text = _SENTENCE_PUNCTUATION.sub(lambda match: "" if match.group() in "{}" else " ", text)
    return _OPERATOR.sub(r"\1", text).split()


def ngrams(sequence: list[str], n: int = NGRAM) -> list[str]:
    """The n-grams of a token sequence, in order, each as one string (tokens never contain a space)."""
    return [" ".join(sequence[i:i + n]) for i in range(len(sequence) - n + 1)]


class BenchmarkIndex:
    """Every benchmark problem's normalised text and n-grams, built once, so that each training problem is
    checked against all benchmarks in one pass over its own n-grams."""

    def __init__(self, benchmarks: dict[str, pd.DataFrame], n: int = NGRAM):
        self.n = n
        self.sizes = {name: len(frame) for name, frame in benchmarks.items()}
        self.exact: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.grams: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for name, frame in benchmarks.items():
            for bench_id, problem in zip(frame["id"], frame["problem"]):
                sequence = tokens(problem)
                self.exact[" ".join(sequence)].append((name, bench_id))
                for gram in dict.fromkeys(ngrams(sequence, n)):  # each n-gram once per problem, in order
                    self.grams[gram].append((name, bench_id))

    def matches(self, problem: str) -> list[dict[str, Any]]:
        """The benchmark problems this one matches: benchmark, id, check, and for n-gram matches the first
        shared n-gram (in this problem's order) and how many distinct n-grams they share."""
        sequence = tokens(problem)
        exact = set(self.exact.get(" ".join(sequence), ())) if sequence else set()
        shared: dict[tuple[str, str], list[str]] = {}
        for gram in dict.fromkeys(ngrams(sequence, self.n)):
            for key in self.grams.get(gram, ()):
                shared.setdefault(key, []).append(gram)
        found = [{"benchmark": name, "benchmark_id": bench_id, "check": "exact"} for name, bench_id in sorted(exact)]
        found += [{"benchmark": name, "benchmark_id": bench_id, "check": "ngram", "ngram": grams[0],
                   "shared_ngrams": len(grams)} for (name, bench_id), grams in shared.items()]
        return found


def contamination_report(problems: pd.DataFrame, benchmarks: dict[str, pd.DataFrame], *, dataset: str,
                         n: int = NGRAM) -> dict[str, Any]:
    """Per benchmark: how many training problems each check finds contaminated (and either), how many benchmark
    problems were hit, and every matched pair (training id, benchmark id, check, shared n-gram)."""
    index = BenchmarkIndex(benchmarks, n)
    per_bench: dict[str, dict[str, Any]] = {
        name: {"benchmark_problems": size, "pairs": [], "_train": {c: set() for c in CHECKS}, "_hit": set()}
        for name, size in index.sizes.items()}
    for train_id, problem in zip(problems["id"], problems["problem"]):
        for match in index.matches(problem):
            entry = per_bench[match["benchmark"]]
            entry["_train"][match["check"]].add(train_id)
            entry["_hit"].add(match["benchmark_id"])
            entry["pairs"].append({"training_id": train_id, **{k: v for k, v in match.items() if k != "benchmark"}})
    contaminated: set[str] = set()
    for entry in per_bench.values():
        found = entry.pop("_train")
        either = found["exact"] | found["ngram"]
        contaminated |= either
        entry["contaminated_training_problems"] = {"exact": len(found["exact"]), "ngram": len(found["ngram"]),
                                                   "any": len(either)}
        entry["benchmark_problems_hit"] = len(entry.pop("_hit"))
        entry["pairs"] = entry.pop("pairs")  # after the counts, for a reader of the file
    return {
        "dataset": dataset,
        "training_problems": len(problems),
        "checks": {"exact": "normalised token sequences equal", "ngram": f"a shared word {n}-gram"},
        "ngram": n,
        "normalisation": ("NFKC, lowercase; LaTeX math delimiters, spacing, sizing and style commands deleted, "
                          "\\dfrac/\\tfrac -> \\frac; braces deleted; quotes and sentence punctuation -> space; "
                          "words split on whitespace with LaTeX commands and brackets apart and operators glued "
                          "(mindthegap.decontamination.tokens)"),
        "contaminated_training_problems": len(contaminated),
        "contaminated_ids": sorted(contaminated),
        "benchmarks": per_bench,
    }


def drop_contaminated(problems: pd.DataFrame, report: dict[str, Any]) -> pd.DataFrame:
    """The training problems without those the report found contaminated (by either check, any benchmark)."""
    if report["training_problems"] != len(problems):
        raise ValueError(f"the contamination report counts {report['training_problems']} training problems, the "
                         f"problems file has {len(problems)}: the report is not of this file")
    return problems[~problems["id"].isin(set(report["contaminated_ids"]))].reset_index(drop=True)


def summary_table(report: dict[str, Any]) -> pd.DataFrame:
    """One row per benchmark: its size, the training problems each check flags, and the benchmark problems hit."""
    rows = [{"benchmark": name, "benchmark problems": entry["benchmark_problems"],
             "exact": entry["contaminated_training_problems"]["exact"],
             f"{report['ngram']}-gram": entry["contaminated_training_problems"]["ngram"],
             "either": entry["contaminated_training_problems"]["any"],
             "benchmark problems hit": entry["benchmark_problems_hit"]}
            for name, entry in report["benchmarks"].items()]
    return pd.DataFrame(rows)


def summary_markdown(report: dict[str, Any]) -> str:
    """The summary table as Markdown, with what was checked."""
    table = summary_table(report)
    header = "| " + " | ".join(table.columns) + " |"
    lines = [header, "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in table.itertuples(index=False)]
    return (f"Training problems of `{report['dataset']}` ({report['training_problems']}) found in a benchmark: "
            f"{report['contaminated_training_problems']} (normalised exact match or a shared word "
            f"{report['ngram']}-gram).\n\n" + "\n".join(lines) + "\n")
