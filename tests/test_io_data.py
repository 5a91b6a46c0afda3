import json
import os
import stat
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import save_file

from mindthegap import data, demo
from mindthegap.io import (LISTED_BAD_ROWS, DataError, apply_umask, atomic_path, current_umask, read_records,
                           write_json, write_parquet, write_text)


def test_atomic_path_keeps_nothing_when_the_block_fails(tmp_path):
    target = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


@contextmanager
def umask(mask):
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("write", [lambda path: write_text("x\n", path), lambda path: write_json({"a": 1}, path),
                                   lambda path: write_parquet(pd.DataFrame({"a": [1]}), path)],
                         ids=["text", "json", "parquet"])
def test_published_files_get_the_umask_s_permissions(tmp_path, write):
    """Under umask 022 an output is 0644, readable by colleagues, as a plain open() would make it (not 0600)."""
    target = tmp_path / "out" / "table"
    with umask(0o022):
        write(target)
    assert mode(target) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["table"]


def test_atomic_path_follows_a_stricter_umask(tmp_path):
    with umask(0o077):
        write_text("private\n", tmp_path / "secret.txt")
    assert mode(tmp_path / "secret.txt") == 0o600


def test_current_umask_reads_the_mask_without_changing_it():
    with umask(0o027):
        assert current_umask() == 0o027
        assert current_umask() == 0o027


@pytest.mark.parametrize("mask,expected", [(0o022, 0o644), (0o027, 0o640)], ids=["umask-022", "umask-027"])
def test_apply_umask_opens_safetensors_weights_as_the_umask_says(tmp_path, mask, expected):
    """safetensors writes weights through a 0600 temporary file; a published model directory gets the umask's mode."""
    model = tmp_path / "model"
    model.mkdir()
    with umask(mask):
        save_file({"weight": np.zeros(2, dtype=np.float32)}, str(model / "model.safetensors"))
        write_json({"hidden_size": 2}, model / "config.json")
        apply_umask(model)
    assert {p.name: mode(p) for p in model.iterdir()} == {"model.safetensors": expected, "config.json": expected}


def test_read_records_lists_every_bad_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"problem": "a"}\n{oops\n\n[1, 2]\n')
    with pytest.raises(DataError) as error:
        read_records(path)
    assert str(error.value).splitlines() == [f"{path}: 2 bad rows", "  line 2: invalid JSON (Expecting property name "
                                             "enclosed in double quotes)", "  line 4: expected a JSON object, got list"]


def test_unreadable_parquet_and_json_name_the_file(tmp_path):
    (tmp_path / "empty.parquet").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.parquet: not a readable parquet file"):
        read_records(tmp_path / "empty.parquet")
    (tmp_path / "rows.json").write_text('[\n  {"problem": "a"},\n  {oops}\n]\n')
    with pytest.raises(DataError, match=r"rows\.json, line 3: invalid JSON"):
        read_records(tmp_path / "rows.json")


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


def test_bad_row_error_names_file_line_and_field(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"problem": "a", "solution": "s"}\n{"problem": "", "solution": "s"}\n')
    with pytest.raises(DataError, match=rf"^{path}, line 2: field 'problem' is empty$"):
        data.load_problems({"source": "local", "path": str(path)}, "toy")


def test_all_bad_rows_of_a_file_are_listed_with_their_file_lines(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"problem": "a", "solution": "s"}\n'
                    '{"problem": "", "solution": "s"}\n'
                    '\n'  # a blank line still counts: positions are the lines an editor shows
                    '{"problem": "b"}\n'
                    '{"problem": ["c"], "solution": "s"}\n')
    with pytest.raises(DataError) as error:
        data.load_problems({"source": "local", "path": str(path)}, "toy")
    assert str(error.value).splitlines() == [
        f"{path}: 3 bad rows",
        "  line 2: field 'problem' is empty",
        "  line 4: missing field 'solution' (fields present: ['problem'])",
        "  line 5: field 'problem' must be text, got list",
    ]


def test_a_long_list_of_bad_rows_is_cut_with_a_count(tmp_path):
    path = tmp_path / "p.parquet"
    write_parquet(pd.DataFrame({"problem": [""] * (LISTED_BAD_ROWS + 5), "solution": ["s"] * (LISTED_BAD_ROWS + 5)}),
                  path)
    with pytest.raises(DataError) as error:
        data.load_problems({"source": "local", "path": str(path)}, "toy")
    lines = str(error.value).splitlines()
    assert lines[0] == f"{path}: {LISTED_BAD_ROWS + 5} bad rows"
    assert lines[1] == "  row 1: field 'problem' is empty"  # parquet rows count from 1 too
    assert lines[-2] == f"  row {LISTED_BAD_ROWS}: field 'problem' is empty"
    assert lines[-1] == "  ... and 5 more"


def test_hub_rows_are_numbered_from_one(tmp_path):
    path = tmp_path / "numina.jsonl"
    path.write_text('{"problem": "a", "solution": "s"}\n{"problem": "b", "solution": " "}\n')
    spec = {"source": "hf", "path": "json", "data_files": str(path), "split": "train"}
    with pytest.raises(DataError, match=rf"^hf:json@None/train from {path}, row 2: field 'solution' is empty$"):
        data.load_problems(spec, "numina")


def test_benchmark_rows_are_all_reported_duplicate_ids_included(tmp_path):
    path = tmp_path / "b.jsonl"
    rows = [{"id": 1, "problem": "p", "answer": "1"}, {"id": 2, "problem": "q", "answer": " "},
            {"id": 1, "problem": "r", "answer": "3"}, {"id": 4, "answer": "4"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError) as error:
        data.load_benchmark({"source": "local", "path": str(path), "gold": "answer"}, "bench")
    assert str(error.value).splitlines() == [
        f"{path}: 3 bad rows",
        "  line 2: field 'answer' is empty",
        "  line 3: duplicate id 'bench-1' (first on line 1)",
        "  line 4: missing field 'problem' (fields present: ['answer', 'id'])",
        "ids must be unique: name a unique id column with fields: {id: <column>}",
    ]


@pytest.mark.parametrize("load", [data.load_problems, data.load_benchmark])
@pytest.mark.parametrize("content", ["", "\n  \n\n"], ids=["empty", "blank-lines"])
def test_an_empty_file_is_an_error_naming_it(tmp_path, load, content):
    path = tmp_path / "p.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=rf"^{path}: no rows \(the file is empty or holds only blank lines\)$"):
        load({"source": "local", "path": str(path)}, "toy")


def test_an_empty_parquet_table_is_an_error_naming_it(tmp_path):
    path = tmp_path / "p.parquet"
    write_parquet(pd.DataFrame({"problem": pd.Series([], dtype=str), "solution": pd.Series([], dtype=str)}), path)
    with pytest.raises(DataError, match=rf"^{path}: no rows \(the file is empty\)$"):
        data.load_problems({"source": "local", "path": str(path)}, "toy")


@pytest.mark.parametrize("content", ["", "\n\n"], ids=["empty", "blank-lines"])
def test_an_empty_hub_split_is_an_error_naming_the_source(tmp_path, content):
    """The hub code path (datasets.load_dataset) raises a different error for each kind of empty input."""
    path = tmp_path / "p.jsonl"
    path.write_text(content)
    spec = {"source": "hf", "path": "json", "data_files": str(path), "split": "train", "limit": 3}
    with pytest.raises(DataError, match=rf"^hf:json@None/train\[:3\] from {path}: no rows \(the split is empty\)$"):
        data.load_benchmark(spec, "bench")


def test_an_unreadable_hub_data_file_names_the_source(tmp_path):
    path = tmp_path / "p.parquet"
    write_parquet(pd.DataFrame({"problem": pd.Series([], dtype=str)}), path)
    spec = {"source": "hf", "path": "parquet", "data_files": str(path), "split": "train"}
    with pytest.raises(DataError, match=rf"^hf:parquet@None/train from {path}: cannot read its data files"):
        data.load_problems(spec, "toy")


def test_a_limit_that_leaves_nothing_is_an_error(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"problem": "a", "solution": "s"}\n')
    with pytest.raises(DataError, match=rf"^{path}: no rows left by limit 0$"):
        data.load_problems({"source": "local", "path": str(path), "limit": 0}, "toy")


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
