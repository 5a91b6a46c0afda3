"""Problems and benchmarks: load from the HF hub, a local jsonl/parquet file, or the demo generator,
and map each source onto one contract.

problems:   id, problem, solution (the expert demonstration), answer (gold; "" when the solution has none)
benchmarks: id, problem, answer (gold, as the Qwen2.5-Math harness takes it), solution ("" when absent)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from mindthegap.io import DataError, bad_rows_error, numbered_records

PROBLEM_COLUMNS = ["id", "problem", "solution", "answer"]
BENCHMARK_COLUMNS = ["id", "problem", "answer", "solution"]


def load_rows(spec: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Raw rows of one source and a name for it in error messages.

    spec keys: source (hf | local | synthetic), path, and for hf: revision, split, subset, data_files
    (for the hub's generic loaders such as path "json" or "parquet");
    limit keeps the first N rows (the paper uses NuminaMath-CoT's first 50k).
    A source without rows is an error here, where the file is known, not stages later where it is not.
    """
    where, numbered = _numbered_rows(spec)
    return where, [row for _, row in numbered]


def _numbered_rows(spec: dict[str, Any]) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """load_rows' rows with their 1-based positions for error messages: "line N" of a jsonl file, else "row N"."""
    source = spec.get("source")
    limit = spec.get("limit")
    if source == "local":
        where, numbered = spec["path"], numbered_records(spec["path"])
    elif source == "hf":
        where, rows = _load_hub(spec)
        numbered = [(f"row {number}", row) for number, row in enumerate(rows, start=1)]
    elif source == "synthetic":
        from mindthegap import demo

        where = f"synthetic:{spec['task']}/{spec.get('split', 'train')}"
        rows = demo.generate_problems(spec["task"], n=spec["n"], seed=spec["seed"], split=spec.get("split", "train"))
        numbered = [(f"row {number}", row) for number, row in enumerate(rows, start=1)]
    else:
        raise DataError(f"unknown data source {source!r} in {spec}: use 'hf', 'local' or 'synthetic'")
    if not numbered:
        raise DataError(f"{where}: no rows ({_why_empty(spec)})")
    numbered = numbered if limit is None else numbered[:limit]
    if not numbered:
        raise DataError(f"{where}: no rows left by limit {limit}")
    return where, numbered


def _why_empty(spec: dict[str, Any]) -> str:
    if spec["source"] == "hf":
        return "the split is empty"
    if spec["source"] != "local":
        return "the source is empty"
    if str(spec["path"]).lower().endswith(".jsonl"):
        return "the file is empty or holds only blank lines"
    return "the file is empty"


def _load_hub(spec: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Rows of a hub dataset (or of a local directory laid out like one: the same call, only the path differs).

    `subset` is the hub's configuration name (None: the default one); it is never the pipeline's own name for the
    data, which names an output file only.
    """
    import datasets
    from datasets.exceptions import DatasetGenerationError

    split = spec.get("split", "train")
    if spec.get("limit"):
        split = f"{split}[:{int(spec['limit'])}]"  # download-side slicing: only what is used is materialised
    subset = f"/{spec['subset']}" if spec.get("subset") else ""
    files = f" from {spec['data_files']}" if spec.get("data_files") else ""
    where = f"hf:{spec['path']}{subset}@{spec.get('revision')}/{split}{files}"
    empty = DataError(f"{where}: no rows (the split is empty)")
    try:
        dataset = datasets.load_dataset(spec["path"], spec.get("subset"), revision=spec.get("revision"),
                                        split=split, data_files=spec.get("data_files"))
    except StopIteration as err:  # the generic json loader, given a file without rows
        raise empty from err
    except ValueError as err:
        if "corresponds to no data" in str(err):  # datasets' own check that the split has rows
            raise empty from err
        raise
    except DatasetGenerationError as err:  # e.g. a parquet file without rows: the cause says what went wrong
        raise DataError(f"{where}: cannot read its data files ({err.__cause__ or err})") from err
    return where, list(dataset)


class _BadRow(ValueError):
    """What is wrong with one row; the caller adds where the row is and reports all bad rows together."""


def _field(row: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, float) and pd.isna(value)):
        if required:
            raise _BadRow(f"missing field {key!r} (fields present: {sorted(row)})")
        return ""
    if not isinstance(value, (str, int, float)):
        raise _BadRow(f"field {key!r} must be text, got {type(value).__name__}")
    text = str(value)
    if required and not text.strip():
        raise _BadRow(f"field {key!r} is empty")
    return text


def _row_id(row: dict[str, Any], id_field: str | None, prefix: str, index: int) -> str:
    if id_field and row.get(id_field) is not None:
        return f"{prefix}-{row[id_field]}"
    return f"{prefix}-{index:06d}"


def _convert_rows(where: str, numbered: list[tuple[str, dict[str, Any]]],
                  convert: Callable[[dict[str, Any], int], dict[str, str]], columns: list[str]) -> pd.DataFrame:
    """Apply `convert(row, index)` to every row; raise one DataError that lists every bad row (ids included:
    an id seen before is a bad row), not only the first."""
    records, bad, first_seen = [], [], {}
    for index, (position, row) in enumerate(numbered):
        try:
            record = convert(row, index)
        except _BadRow as err:
            bad.append((position, str(err)))
            continue
        first = first_seen.setdefault(record["id"], position)
        if first != position:
            bad.append((position, f"duplicate id {record['id']!r} (first on {first})"))
        records.append(record)
    if bad:
        error = bad_rows_error(where, bad)
        if any(problem.startswith("duplicate id") for _, problem in bad):
            error = DataError(f"{error}\nids must be unique: name a unique id column with fields: {{id: <column>}}")
        raise error
    return pd.DataFrame(records, columns=columns)


def _fields(spec: dict[str, Any], defaults: dict[str, str | None], where: str) -> dict[str, str | None]:
    """The source's field names for each of our columns: `fields:` of the spec over the defaults."""
    unknown = sorted(set(spec.get("fields", {})) - set(defaults))
    if unknown:
        raise DataError(f"{where}: unknown key(s) {unknown} under 'fields'; valid: {sorted(defaults)}")
    return {**defaults, **spec.get("fields", {})}


def load_problems(spec: dict[str, Any], name: str) -> pd.DataFrame:
    """Training problems with expert solutions; the gold answer is the solution's last \\boxed{}."""
    from mindthegap.grading import last_boxed

    where, numbered = _numbered_rows(spec)
    fields = _fields(spec, {"problem": "problem", "solution": "solution", "answer": None, "id": None}, where)

    def convert(row: dict[str, Any], index: int) -> dict[str, str]:
        problem = _field(row, fields["problem"])
        solution = _field(row, fields["solution"])
        answer = _field(row, fields["answer"]) if fields["answer"] else last_boxed(solution) or ""
        return {"id": _row_id(row, fields["id"], name, index), "problem": problem, "solution": solution,
                "answer": answer}

    return _convert_rows(where, numbered, convert, PROBLEM_COLUMNS)


def load_benchmark(spec: dict[str, Any], name: str) -> pd.DataFrame:
    """Benchmark problems with gold answers taken exactly as the Qwen2.5-Math harness takes them."""
    from mindthegap.grading import gold_from_benchmark

    where, numbered = _numbered_rows(spec)
    fields = _fields(spec, {"problem": None, "solution": "solution", "id": None}, where)
    gold_rule = spec.get("gold", name)  # which harness rule reads the gold answer (defaults to the bench name)

    def convert(row: dict[str, Any], index: int) -> dict[str, str]:
        problem_key = fields["problem"] or next((k for k in HARNESS_QUESTION_KEYS if k in row), "problem")
        if gold_rule == "answer":
            answer = _field(row, "answer")
        else:
            try:
                answer = gold_from_benchmark(row, gold_rule)
            except (KeyError, IndexError, TypeError) as err:
                raise _BadRow(f"cannot read the gold answer ({gold_rule}): {err!r}") from err
        if not str(answer).strip():
            raise _BadRow("empty gold answer")
        problem = harness_question(_field(row, problem_key), str(answer))
        solution = row.get(fields["solution"]) or ""
        if isinstance(solution, list):  # OlympiadBench keeps a list of solutions
            solution = "\n\n".join(map(str, solution))
        return {"id": _row_id(row, fields["id"] or _guess_id(row), name, index),
                "problem": problem, "answer": str(answer), "solution": str(solution)}

    return _convert_rows(where, numbered, convert, BENCHMARK_COLUMNS)


# The harness's `parse_question` reads the first of these fields that a row has.
HARNESS_QUESTION_KEYS = ("question", "problem", "Question", "input")


def harness_question(question: str, gold: str) -> str:
    """The question text exactly as the Qwen2.5-Math harness's `parse_question` puts it into the prompt: a yes/no or
    true/false gold adds a hint to the question, and the result is stripped."""
    if gold.lower() in ("true", "false"):
        question += " (True or False)"
    if gold.lower() in ("yes", "no"):
        question += " (Yes or No)"
    return question.strip()


def _guess_id(row: dict[str, Any]) -> str | None:
    for key in ("id", "idx", "unique_id"):
        if key in row:
            return key
    return None
