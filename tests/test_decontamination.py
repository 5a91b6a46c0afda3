"""Decontamination: planted contamination is found (exact, re-typeset, an 8-gram inside a longer problem), near
misses (a 7-gram only) are not; the n-gram check agrees with an independent longest-common-run computation; `drop`
changes what the later stages read and `report` does not."""

import difflib
import random

import pandas as pd
import pytest

from helpers import load_config, plan_jobs
from mindthegap.decontamination import contamination_report, drop_contaminated, summary_table, tokens

BENCH = {
    "math500": pd.DataFrame({"id": ["math500-0", "math500-1"], "problem": [
        r"If $f(x) = \dfrac{3x-2}{x-2}$, what is the value of $f(-2) +f(-1)+f(0)$? Express your answer as a "
        r"common fraction.",
        "A bag holds seven red marbles and five blue marbles and two green marbles; how many ways can three be drawn?",
    ]}),
    "aime24": pd.DataFrame({"id": ["aime24-0"], "problem": ["Find the number of positive integers n less than 1000 "
                                                            "such that n squared ends in the digits 21."]}),
}


def problems(rows: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"id": list(rows), "problem": list(rows.values()), "solution": "", "answer": ""})


def flagged(report, bench, check):
    return {(p["training_id"], p["benchmark_id"]) for p in report["benchmarks"][bench]["pairs"] if p["check"] == check}


def test_planted_contamination_is_found_and_near_misses_are_not():
    train = problems({
        "exact": BENCH["aime24"]["problem"][0],
        # the same problem typeset otherwise: case, \( \) for $, \frac for \dfrac, spacing, \left( \right), braces
        "retyped": r"IF \(f\left(x\right)=\frac{3x - 2}{x - 2}\), What is the value of \(f(-2)+f(-1)+f(0)\) ? "
                   r"express your answer as a common  fraction",
        # 9 consecutive words of math500-1 (two 8-grams) inside a longer, different problem
        "inside": "Consider a box. A bag holds seven red marbles and five blue balls, and a box holds nothing else; "
                  "find the total.",
        # 7 consecutive words only ("a bag holds seven red marbles and"), then a different word
        "seven": "Yesterday a bag holds seven red marbles and six blue marbles and two green marbles remain.",
        "clean": "What is the sum of the first ten positive odd integers?",
    })
    report = contamination_report(train, BENCH, dataset="toy")
    assert flagged(report, "aime24", "exact") == {("exact", "aime24-0")}
    assert flagged(report, "math500", "exact") == {("retyped", "math500-0")}
    assert flagged(report, "math500", "ngram") == {("retyped", "math500-0"), ("inside", "math500-1")}
    assert report["contaminated_ids"] == ["exact", "inside", "retyped"]  # not "seven", not "clean"
    inside = next(p for p in report["benchmarks"]["math500"]["pairs"] if p["training_id"] == "inside")
    assert inside["ngram"] == "a bag holds seven red marbles and five" and inside["shared_ngrams"] == 2
    counts = summary_table(report).set_index("benchmark")
    assert counts.loc["math500", ["exact", "8-gram", "either", "benchmark problems hit"]].tolist() == [1, 2, 2, 2]
    assert counts.loc["aime24", ["exact", "8-gram", "either"]].tolist() == [1, 1, 1]


def test_a_7gram_matches_when_n_is_7():
    """The near miss above is a near miss because of n, not because the words differ."""
    train = problems({"seven": "Yesterday a bag holds seven red marbles and six blue marbles."})
    assert contamination_report(train, BENCH, dataset="toy", n=7)["contaminated_ids"] == ["seven"]
    assert contamination_report(train, BENCH, dataset="toy", n=8)["contaminated_ids"] == []


def test_ngram_check_agrees_with_the_longest_common_run():
    """Independent computation: two problems share an 8-gram exactly when their longest common run of normalised
    words (difflib) is at least 8 long. Random problems over a small vocabulary, where runs of 6-10 are common."""
    rng = random.Random(0)
    words = ["the", "sum", "of", "x", "and", "y", "is", "ten", "find", "product"]
    bench_texts = [" ".join(rng.choice(words) for _ in range(rng.randint(8, 30))) for _ in range(30)]
    train_texts = []
    for _ in range(300):  # half copy a run of 5-10 words out of a benchmark problem, amid random words
        text = [rng.choice(words) for _ in range(rng.randint(3, 25))]
        if rng.random() < 0.5:
            source = rng.choice(bench_texts).split()
            start = rng.randrange(len(source))
            text[rng.randrange(len(text)):0] = source[start:start + rng.randint(5, 10)]
        train_texts.append(" ".join(text))
    bench = {"b": pd.DataFrame({"id": [f"b{i}" for i in range(len(bench_texts))], "problem": bench_texts})}
    report = contamination_report(problems({f"t{i}": t for i, t in enumerate(train_texts)}), bench, dataset="toy")
    found = flagged(report, "b", "ngram")
    longest = {}
    for i, train_text in enumerate(train_texts):
        for j, bench_text in enumerate(bench_texts):
            a, b = tokens(train_text), tokens(bench_text)
            match = difflib.SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
            longest[(f"t{i}", f"b{j}")] = match.size
    assert found == {pair for pair, size in longest.items() if size >= 8}
    sizes = list(longest.values())
    assert sizes.count(7) >= 20 and len(found) >= 30  # the check binds: many near misses (7) and many matches


def test_drop_removes_exactly_the_contaminated_problems():
    train = problems({"a": BENCH["aime24"]["problem"][0], "b": "What is 2 + 2?", "c": "Name a prime."})
    report = contamination_report(train, BENCH, dataset="toy")
    assert drop_contaminated(train, report)["id"].tolist() == ["b", "c"]
    with pytest.raises(ValueError, match="not of this file"):
        drop_contaminated(train.iloc[:2], report)


@pytest.mark.parametrize("mode", ["report", "drop"])
def test_drop_changes_what_later_stages_read_and_report_does_not(tmp_path, mode):
    cfg = {**load_config("demo.yaml"), "decontamination": mode}
    jobs = plan_jobs(cfg, tmp_path)
    prepared, dropped = "results/demo/problems/arith_train.parquet", "results/demo/problems/arith_train.decontaminated.parquet"
    read = {str(job.input.problems) for job in jobs if job.rule.name in ("sample", "verify", "split_self", "rewrite")}
    assert read == {dropped if mode == "drop" else prepared}
    assert sum(job.rule.name == "drop_contaminated" for job in jobs) == (mode == "drop")
    final = next(job for job in jobs if job.rule.name == "all")
    assert "results/demo/contamination/arith_train.json" in final.input  # counted either way
