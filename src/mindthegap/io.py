"""File helpers shared by every stage: atomic writes and tabular reads with clear errors."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd


class DataError(ValueError):
    """Bad input: the message names the file, the row and the field."""


LISTED_BAD_ROWS = 20  # a file with thousands of bad rows gets a readable error: the first ones and a count


def bad_rows_error(where: str, bad: list[tuple[str, str]]) -> DataError:
    """One error for all bad rows of a file, so that a user fixes them in one pass instead of one per run.

    `bad` holds (position, what is wrong) pairs, e.g. ("line 4", "missing field 'solution'").
    """
    if len(bad) == 1:
        return DataError(f"{where}, {bad[0][0]}: {bad[0][1]}")
    listed = [f"  {position}: {problem}" for position, problem in bad[:LISTED_BAD_ROWS]]
    if len(bad) > LISTED_BAD_ROWS:
        listed.append(f"  ... and {len(bad) - LISTED_BAD_ROWS} more")
    return DataError("\n".join([f"{where}: {len(bad)} bad rows", *listed]))


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    A killed job therefore never leaves a half-written output that Snakemake would take as complete.
    The temporary file is created with mode 0666 less the umask, as any plain write would be (not mkstemp's
    0600): the rename publishes it with those permissions, so colleagues on a shared cluster can read it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows: setting it and setting it back (the only
    portable way) would race with threads that create files meanwhile."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(directory: str | os.PathLike) -> None:
    """Give every file under `directory` the mode a plain open() gives a new file: 0666 less the umask.

    For model directories: safetensors >= 0.8 writes each weights file through a private temporary file (0600)
    that it renames into place (safetensors#782), so `save_pretrained` publishes weights that colleagues on a
    shared cluster cannot read while the config beside them is readable.
    """
    mode = 0o666 & ~current_umask()
    for path in Path(directory).rglob("*"):
        if path.is_file() and not path.is_symlink():
            path.chmod(mode)


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
    """Rows of a .jsonl/.json/.parquet file as dicts; bad rows raise one DataError naming the file and lines."""
    return [row for _, row in numbered_records(path)]


def numbered_records(path: str | os.PathLike) -> list[tuple[str, dict[str, Any]]]:
    """(position, row) pairs of a .jsonl/.json/.parquet file; the position, for error messages, is 1-based:
    "line N" of a .jsonl file (blank lines counted, as an editor counts them), "row N" otherwise."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            rows = pd.read_parquet(path).to_dict("records")
        except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
            raise DataError(f"{path}: not a readable parquet file ({err})") from err
        return [(f"row {number}", row) for number, row in enumerate(rows, start=1)]
    if suffix == ".jsonl":
        return _jsonl_records(path)
    if suffix == ".json":
        return _json_records(path)
    raise DataError(f"{path}: unsupported format {suffix!r} (use .jsonl, .json or .parquet)")


def _jsonl_records(path: Path) -> list[tuple[str, dict[str, Any]]]:
    rows, bad = [], []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                bad.append((f"line {number}", f"invalid JSON ({err.msg})"))
                continue
            if isinstance(row, dict):
                rows.append((f"line {number}", row))
            else:
                bad.append((f"line {number}", f"expected a JSON object, got {type(row).__name__}"))
    if bad:
        raise bad_rows_error(str(path), bad)
    return rows


def _json_records(path: Path) -> list[tuple[str, dict[str, Any]]]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}, line {err.lineno}: invalid JSON ({err.msg})") from err
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON list of objects")
    bad = [(f"row {number}", f"expected a JSON object, got {type(row).__name__}")
           for number, row in enumerate(rows, start=1) if not isinstance(row, dict)]
    if bad:
        raise bad_rows_error(str(path), bad)
    return [(f"row {number}", row) for number, row in enumerate(rows, start=1)]


def read_parquet(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_parquet(path)
