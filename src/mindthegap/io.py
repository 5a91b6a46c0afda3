"""File helpers shared by every stage: atomic writes and tabular reads with clear errors."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd


class DataError(ValueError):
    """Bad input: the message names the file, the row and the field."""


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    A killed job therefore never leaves a half-written output that Snakemake would take as complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_json(obj: Any, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_text(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_lines(lines: Iterable[str], path: str | os.PathLike) -> None:
    write_text("".join(f"{line}\n" for line in lines), path)


def read_lines(path: str | os.PathLike) -> list[str]:
    return [line for line in Path(path).read_text().splitlines() if line]


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a .jsonl/.json/.parquet file as dicts; a bad JSON line raises DataError naming file and line."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path).to_dict("records")
    if suffix == ".jsonl":
        rows = []
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(f"{path}:{number}: invalid JSON ({err.msg})") from err
                if not isinstance(row, dict):
                    raise DataError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
                rows.append(row)
        return rows
    if suffix == ".json":
        rows = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(rows, list):
            raise DataError(f"{path}: expected a JSON list of objects")
        return rows
    raise DataError(f"{path}: unsupported format {suffix!r} (use .jsonl, .json or .parquet)")


def read_parquet(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_parquet(path)
