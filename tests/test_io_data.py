import json

import pandas as pd
import pytest

from mindthegap import data, demo
from mindthegap.io import DataError, atomic_path, read_records, write_parquet


def test_atomic_path_keeps_nothing_when_the_block_fails(tmp_path):
    target = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_read_records_names_the_bad_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"problem": "a"}\n{oops\n')
    with pytest.raises(DataError, match=r"rows\.jsonl:2: invalid JSON"):
        read_records(path)


def test_problems_from_local_jsonl_take_the_last_box_as_gold(tmp_path):
    path = tmp_path / "p.jsonl"
    rows = [{"problem": "1+1?", "solution": "\\boxed{3} no, \\boxed{2}"}, {"problem": "x?", "solution": "none"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    frame = data.load_problems({"source": "local", "path": str(path)}, "toy")
    assert frame.columns.tolist() == data.PROBLEM_COLUMNS
    assert frame["answer"].tolist() == ["2", ""]
    assert frame["id"].tolist() == ["toy-000000", "toy-000001"]


def test_problems_from_parquet_with_limit(tmp_path):
    path = tmp_path / "p.parquet"
    write_parquet(pd.DataFrame({"problem": ["a", "b", "c"], "solution": ["\\boxed{1}"] * 3}), path)
    frame = data.load_problems({"source": "local", "path": str(path), "limit": 2}, "toy")
    assert len(frame) == 2


def test_problems_through_the_datasets_library(tmp_path):
    """The hub code path (datasets.load_dataset), fed a local file through its generic json loader."""
    path = tmp_path / "numina.jsonl"
    rows = [{"problem": f"p{i}", "solution": f"so \\boxed{{{i}}}", "source": "x"} for i in range(5)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {"source": "hf", "path": "json", "data_files": str(path), "split": "train", "limit": 3}
    frame = data.load_problems(spec, "numina")
    assert frame["answer"].tolist() == ["0", "1", "2"]


def test_bad_row_error_names_file_row_and_field(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"problem": "a", "solution": "s"}\n{"problem": "", "solution": "s"}\n')
    with pytest.raises(DataError, match=r"p\.jsonl: row 1: field 'problem' is empty"):
        data.load_problems({"source": "local", "path": str(path)}, "toy")
    path.write_text('{"problem": "a"}\n')
    with pytest.raises(DataError, match=r"row 0: missing field 'solution'"):
        data.load_problems({"source": "local", "path": str(path)}, "toy")


def test_unknown_source_is_named():
    with pytest.raises(DataError, match="unknown data source 'ftp'"):
        data.load_rows({"source": "ftp"})


def test_synthetic_splits_are_disjoint_and_answers_are_right():
    train = demo.generate_problems("arith", 60, seed=1, split="train")
    test = demo.generate_problems("arith", 60, seed=1, split="test")
    assert not {r["problem"] for r in train} & {r["problem"] for r in test}
    for row in train:
        expression = row["problem"].removeprefix("What is ").removesuffix("?")
        assert str(eval(expression)) == row["answer"]  # our own generated arithmetic, not model text
        assert row["solution"].endswith(f"\\boxed{{{row['answer']}}}.")
    assert {r["level"] for r in train} == set(demo.LEVELS)


@pytest.mark.parametrize("bench,count", [("math500", 500), ("minerva_math", 272), ("olympiadbench", 675),
                                         ("aime24", 30), ("amc23", 40)])
def test_real_benchmarks_map_onto_the_contract(shared, bench, count):
    path = shared / f"data/benchmarks/{bench}/test.jsonl"
    frame = data.load_benchmark({"source": "local", "path": str(path)}, bench)
    assert len(frame) == count
    assert frame.columns.tolist() == data.BENCHMARK_COLUMNS
    assert frame["id"].is_unique
    assert (frame["answer"].str.strip() != "").all()
    if bench == "amc23":
        assert frame["answer"].iloc[0] == "27"
