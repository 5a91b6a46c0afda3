"""The authors' released training data (`xychao/MTG` on the hub) as a dataset variant, `released`, so that the
paper's methods can be trained on the authors' own rewritten data and compared with ours.

The release is verl-style parquet: the raw problem and the training response sit in a struct column,
`extra_info.question` and `extra_info.answer` (the release's `train_dft.sh` trains with `prompt_key=extra_info`,
`prompt_dict_keys=['question']`, `response_dict_keys=['answer']`). The config maps these fields (`released.fields`,
dotted paths into nested columns). Rows are read by the same `datasets.load_dataset` call as the problems
(`mindthegap.data.load_rows`), and written in the dataset contract of `mindthegap.rewrite` (`DATASET_COLUMNS`):
the training prompt is the model's training template applied to the question, as for the other variants; the
completion is the release's answer; no behaviour log-probs are known (the IS loss weighs these rows as expert rows).

Each row's source is the release's own label when `fields.source` names one (its values must be self, guided or
expert); otherwise "released": the release does not say which rows were self-solved, re-solved or expert.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable
from typing import Any

import pandas as pd

from mindthegap.data import _numbered_rows
from mindthegap.io import bad_rows_error
from mindthegap.rewrite import DATASET_COLUMNS, SOURCES

RELEASED_SOURCE = "released"
DEFAULT_FIELDS = {"problem": "extra_info.question", "completion": "extra_info.answer", "source": None, "id": None}


def release_spec(released: dict[str, Any], model: str) -> dict[str, Any]:
    """The data-source spec (`mindthegap.data.load_rows`) of one model's release: `data_files` is a per-model map
    in the config (the release holds one training set per model); a model without an entry reads the whole split."""
    spec = {key: copy.deepcopy(value) for key, value in released.items() if key not in ("fields", "data_files")}
    files = released.get("data_files", {}).get(model)
    if files:
        spec["data_files"] = {spec.get("split", "train"): files}
    return spec


def nested(row: dict[str, Any], path: str) -> Any:
    """`row[path]` if the row has that flat column (a flattened export), else the dotted path into nested structs."""
    if path in row:
        return row[path]
    value: Any = row
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            raise KeyError(path)
        value = value[key]
    return value


def _text(row: dict[str, Any], path: str) -> str:
    try:
        value = nested(row, path)
    except KeyError:
        raise ValueError(f"missing field {path!r} (top-level fields: {sorted(row)})") from None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field {path!r} must be non-empty text, got {value!r:.60}")
    return value


def released_dataset(spec: dict[str, Any], fields: dict[str, str | None],
                     train_prompt: Callable[[str], str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The release's rows as training rows (`DATASET_COLUMNS`) and their statistics; every bad row is reported
    at once, with its position."""
    fields = {**DEFAULT_FIELDS, **fields}
    where, numbered = _numbered_rows(spec)
    rows, bad, seen = [], [], {}
    for index, (position, row) in enumerate(numbered):
        try:
            source = str(nested(row, fields["source"])) if fields["source"] else RELEASED_SOURCE
            if fields["source"] and source not in SOURCES:
                raise ValueError(f"source label {source!r} of field {fields['source']!r} is none of {SOURCES}")
            row_id = f"released-{nested(row, fields['id']) if fields['id'] else f'{index:06d}'}"
            problem, completion = _text(row, fields["problem"]), _text(row, fields["completion"])
        except KeyError as err:
            bad.append((position, f"missing field {err.args[0]!r} (top-level fields: {sorted(row)})"))
            continue
        except ValueError as err:
            bad.append((position, str(err)))
            continue
        if seen.setdefault(row_id, position) != position:
            bad.append((position, f"duplicate id {row_id!r} (first on {seen[row_id]})"))
        rows.append({"id": row_id, "prompt": train_prompt(problem), "completion": completion,
                     "completion_token_ids": None, "behaviour_logprobs": None, "source": source,
                     "sample_idx": -1, "sampled_with": None})
    if bad:
        raise bad_rows_error(where, bad)
    dataset = pd.DataFrame(rows, columns=DATASET_COLUMNS)
    stats = {"variant": "released", "rows": len(dataset), "sources": dict(sorted(Counter(dataset["source"]).items())),
             "release": {"where": where, "fields": fields}}
    return dataset, stats
