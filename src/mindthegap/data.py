"""Problems and benchmarks: load from the HF hub, a local jsonl/parquet file, or the demo generator,
and map each source onto one contract.

problems:   id, problem, solution (the expert demonstration), answer (gold; "" when the solution has none)
benchmarks: id, problem, answer (gold, as the Qwen2.5-Math harness takes it), solution ("" when absent)
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from mindthegap.io import DataError, read_records

PROBLEM_COLUMNS = ["id", "problem", "solution", "answer"]
BENCHMARK_COLUMNS = ["id", "problem", "answer", "solution"]


def load_rows(spec: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Raw rows of one source and a name for it in error messages.

    spec keys: source (hf | local | synthetic), path, and for hf: revision, split, subset, data_files
    (for the hub's generic loaders such as path "json" or "parquet");
    limit keeps the first N rows (the paper uses NuminaMath-CoT's first 50k).
    """
    source = spec.get("source")
    limit = spec.get("limit")
    if source == "local":
        where, rows = spec["path"], read_records(spec["path"])
    elif source == "hf":
        where, rows = _load_hub(spec)
    elif source == "synthetic":
        from mindthegap import demo

        where = f"synthetic:{spec['task']}/{spec.get('split', 'train')}"
        rows = demo.generate_problems(spec["task"], n=spec["n"], seed=spec["seed"], split=spec.get("split", "train"))
    else:
        raise DataError(f"unknown data source {source!r} in {spec}: use 'hf', 'local' or 'synthetic'")
    return where, rows[:limit] if limit else rows


def _load_hub(spec: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Rows of a hub dataset (or of a local directory laid out like one: the same call, only the path differs).

    `subset` is the hub's configuration name (None: the default one); it is never the pipeline's own name for the
    data, which names an output file only.
    """
    import datasets

    split = spec.get("split", "train")
    if spec.get("limit"):
        split = f"{split}[:{int(spec['limit'])}]"  # download-side slicing: only what is used is materialised
    dataset = datasets.load_dataset(spec["path"], spec.get("subset"), revision=spec.get("revision"), split=split,
                                    data_files=spec.get("data_files"))
    subset = f"/{spec['subset']}" if spec.get("subset") else ""
    return f"hf:{spec['path']}{subset}@{spec.get('revision')}/{split}", list(dataset)


def _field(row: dict[str, Any], key: str, where: str, index: int, *, required: bool = True) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, float) and pd.isna(value)):
        if required:
            raise DataError(f"{where}: row {index}: missing field {key!r} (fields present: {sorted(row)})")
        return ""
    if not isinstance(value, (str, int, float)):
        raise DataError(f"{where}: row {index}: field {key!r} must be text, got {type(value).__name__}")
    text = str(value)
    if required and not text.strip():
        raise DataError(f"{where}: row {index}: field {key!r} is empty")
    return text


def _row_id(row: dict[str, Any], id_field: str | None, prefix: str, index: int) -> str:
    if id_field and row.get(id_field) is not None:
        return f"{prefix}-{row[id_field]}"
    return f"{prefix}-{index:06d}"


def _fields(spec: dict[str, Any], defaults: dict[str, str | None], where: str) -> dict[str, str | None]:
    """The source's field names for each of our columns: `fields:` of the spec over the defaults."""
    unknown = sorted(set(spec.get("fields", {})) - set(defaults))
    if unknown:
        raise DataError(f"{where}: unknown key(s) {unknown} under 'fields'; valid: {sorted(defaults)}")
    return {**defaults, **spec.get("fields", {})}


def load_problems(spec: dict[str, Any], name: str) -> pd.DataFrame:
    """Training problems with expert solutions; the gold answer is the solution's last \\boxed{}."""
    from mindthegap.grading import last_boxed

    where, rows = load_rows(spec)
    fields = _fields(spec, {"problem": "problem", "solution": "solution", "answer": None, "id": None}, where)
    records = []
    for index, row in enumerate(rows):
        problem = _field(row, fields["problem"], where, index)
        solution = _field(row, fields["solution"], where, index)
        if fields["answer"]:
            answer = _field(row, fields["answer"], where, index)
        else:
            answer = last_boxed(solution) or ""
        records.append({"id": _row_id(row, fields["id"], name, index), "problem": problem,
                        "solution": solution, "answer": answer})
    return _unique(pd.DataFrame(records, columns=PROBLEM_COLUMNS), where)


def load_benchmark(spec: dict[str, Any], name: str) -> pd.DataFrame:
    """Benchmark problems with gold answers taken exactly as the Qwen2.5-Math harness takes them."""
    from mindthegap.grading import gold_from_benchmark

    where, rows = load_rows(spec)
    fields = _fields(spec, {"problem": None, "solution": "solution", "id": None}, where)
    gold_rule = spec.get("gold", name)  # which harness rule reads the gold answer (defaults to the bench name)
    records = []
    for index, row in enumerate(rows):
        problem_key = fields["problem"] or next((k for k in HARNESS_QUESTION_KEYS if k in row), "problem")
        if gold_rule == "answer":
            answer = _field(row, "answer", where, index)
        else:
            try:
                answer = gold_from_benchmark(row, gold_rule)
            except (KeyError, IndexError, TypeError) as err:
                raise DataError(f"{where}: row {index}: cannot read the gold answer ({gold_rule}): {err!r}") from err
        if not str(answer).strip():
            raise DataError(f"{where}: row {index}: empty gold answer")
        problem = harness_question(_field(row, problem_key, where, index), str(answer))
        solution = row.get(fields["solution"]) or ""
        if isinstance(solution, list):  # OlympiadBench keeps a list of solutions
            solution = "\n\n".join(map(str, solution))
        records.append({"id": _row_id(row, fields["id"] or _guess_id(row), name, index),
                        "problem": problem, "answer": str(answer), "solution": str(solution)})
    return _unique(pd.DataFrame(records, columns=BENCHMARK_COLUMNS), where)


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


def _unique(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    duplicated = frame["id"][frame["id"].duplicated()]
    if len(duplicated):
        raise DataError(f"{where}: duplicate ids, e.g. {duplicated.iloc[0]!r}; name a unique id column with fields: {id: <column>}")
    return frame
