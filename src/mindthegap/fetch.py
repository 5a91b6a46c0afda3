"""The hub prefetch: every hub model (at its pinned revision), NuminaMath-CoT and hub benchmarks are downloaded once,
by the `prefetch` jobs on a machine with network, into one cache; every other job then reads that cache offline.

The cache root has the layout of `$HF_HOME` (`hub/` for models, `datasets/` for prepared datasets), so
`hub_cache: $HF_HOME` in the config shares an existing cache. The token stays where the user's `hf auth login`
put it (HF_HOME itself is never moved), or comes from HF_TOKEN.

The Hugging Face libraries read these settings from the environment once, when they are imported: the workflow
sets them for every job (`hub_environment`, rules/common.smk), and the prefetch job switches itself back online
(`use_hub_cache(..., offline=False)`) before it imports anything from the hub's libraries.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Files a transformers/vLLM load never reads: the original (consolidated .pth) checkpoints that Meta ships beside
# the safetensors, and other frameworks' weights. Llama-3.1-8B-Instruct's `original/` alone is 16 GB.
NOT_NEEDED = ["original/*", "*.pth", "*.pt", "*.msgpack", "*.h5", "*.ot", "*.onnx", "*.gguf", "flax_model*",
              "tf_model*", "rust_model*"]
GENERIC_LOADERS = ("json", "parquet", "csv", "text", "arrow")  # datasets' builders that read data_files, no repo
PREFETCH_HINT = "run the prefetch on a machine with network first: snakemake --profile profiles/local --until prefetch"


class HubAccessError(RuntimeError):
    """A hub repository that cannot be fetched or read, with what to do about it."""


# --- the environment of every job ------------------------------------------------------------------------------


def hub_environment(root: str | os.PathLike, *, offline: bool) -> dict[str, str]:
    """Environment variables that point the hub's libraries at the cache under `root` (absolute paths)."""
    root = Path(os.path.expandvars(os.path.expanduser(str(root)))).resolve()
    flag = "1" if offline else "0"
    return {"HF_HUB_CACHE": str(root / "hub"), "HF_DATASETS_CACHE": str(root / "datasets"),
            "HF_HUB_OFFLINE": flag, "HF_DATASETS_OFFLINE": flag, "TRANSFORMERS_OFFLINE": flag}


def use_hub_cache(root: str | os.PathLike, *, offline: bool) -> dict[str, str]:
    """Apply `hub_environment` to this process. Call it before importing huggingface_hub, datasets or
    transformers: they read it at import, so a late call would be silently ignored; that is an error here."""
    environment = hub_environment(root, offline=offline)
    if "huggingface_hub" in sys.modules:
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE != offline or Path(constants.HF_HUB_CACHE) != Path(environment["HF_HUB_CACHE"]):
            raise RuntimeError("huggingface_hub was imported before use_hub_cache(): its cache and offline settings "
                               "are already fixed; call use_hub_cache() first")
    os.environ.update(environment)
    return environment


# --- errors that say what to do --------------------------------------------------------------------------------


def _hub_url(repo_id: str, kind: str) -> str:
    return f"https://huggingface.co/{'datasets/' if kind == 'dataset' else ''}{repo_id}"


def explain(error: BaseException, repo_id: str, revision: str | None, *, kind: str, where: str) -> str | None:
    """A message naming the repository, the config key and the fix, for the hub errors anywhere in `error`'s
    chain (`datasets` wraps them in its own exceptions); None for other errors."""
    from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    url = _hub_url(repo_id, kind)
    chain = []
    while error is not None and len(chain) < 10:
        chain.append(error)
        error = error.__cause__ or error.__context__
    for cause in chain:  # GatedRepoError is a RepositoryNotFoundError: test it first
        if isinstance(cause, GatedRepoError):
            return (f"{kind} {repo_id} ({where}) is gated on the Hugging Face hub: request access on {url} with "
                    "your account, then let the prefetch use that account's token: `hf auth login` (stored under "
                    "$HF_HOME) or export HF_TOKEN=<token> before running snakemake")
        if isinstance(cause, RepositoryNotFoundError):
            return (f"{kind} {repo_id} ({where}) is not on the Hugging Face hub, or it is private and no token with "
                    f"access was sent: check the id ({url}); for a private or gated repository log in with "
                    "`hf auth login` or export HF_TOKEN=<token>")
        if isinstance(cause, RevisionNotFoundError):
            return (f"{kind} {repo_id} ({where}) has no revision {revision!r}: set `revision:` to a branch, tag or "
                    f"commit SHA listed on {url}/commits/main")
        if isinstance(cause, LocalEntryNotFoundError):
            return (f"{kind} {repo_id}@{revision} ({where}) is not in the hub cache, and the hub cannot be reached "
                    f"from here (an offline job, or no network): {PREFETCH_HINT}")
    return None


@contextlib.contextmanager
def hub_errors(repo_id: str, revision: str | None, *, kind: str, where: str) -> Iterator[None]:
    """Re-raise the hub's errors from inside the block as HubAccessError with `explain`'s message."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - only the hub's errors are translated; others pass unchanged
        message = explain(error, repo_id, revision, kind=kind, where=where)
        if message is None:
            raise
        raise HubAccessError(message) from error


# --- the prefetch --------------------------------------------------------------------------------------------


def is_hub_id(path: str) -> bool:
    """A model or dataset path names a hub repository unless it is a local directory (transformers' rule)."""
    return not Path(path).is_dir()


def prefetch_model(repo_id: str, revision: str, root: str | os.PathLike, *, where: str,
                   local_files_only: bool = False) -> dict[str, Any]:
    """Download one model snapshot into `root`/hub and check that it loads offline as the jobs load it.
    Returns the marker: requested revision, the commit it resolved to, the files."""
    from huggingface_hub import snapshot_download

    hub = Path(hub_environment(root, offline=True)["HF_HUB_CACHE"])
    with hub_errors(repo_id, revision, kind="model", where=where):
        snapshot = Path(snapshot_download(repo_id, revision=revision, cache_dir=hub, ignore_patterns=NOT_NEEDED,
                                          local_files_only=local_files_only))
    files = sorted(str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if p.is_file())
    if not any(name.endswith((".safetensors", ".bin")) for name in files):
        raise HubAccessError(f"model {repo_id}@{revision} ({where}): no weights (*.safetensors, *.bin) in its "
                             f"snapshot {snapshot}: {files}")
    _check_offline_load(repo_id, revision, hub, where)
    log.info("model %s@%s: commit %s, %d files in %s", repo_id, revision, snapshot.name, len(files), hub)
    return {"kind": "model", "repo": repo_id, "revision": revision, "commit": snapshot.name, "files": files}


def _check_offline_load(repo_id: str, revision: str, hub: Path, where: str) -> None:
    """Load config and tokenizer from the cache alone, as an offline job will: a file missing from the snapshot
    fails here, on the machine with network, instead of in a GPU job."""
    from transformers import AutoConfig, AutoTokenizer

    with hub_errors(repo_id, revision, kind="model", where=where):
        AutoConfig.from_pretrained(repo_id, revision=revision, cache_dir=hub, local_files_only=True)
        AutoTokenizer.from_pretrained(repo_id, revision=revision, cache_dir=hub, local_files_only=True)


def prefetch_dataset(spec: dict[str, Any], *, where: str) -> dict[str, Any]:
    """Load a hub dataset once with the jobs' own call (`mindthegap.data.load_rows`), online: that fills the
    datasets cache, which the offline jobs then read (`datasets` falls back to its cache when offline).
    The environment (`use_hub_cache`) decides where the cache is."""
    from huggingface_hub import HfApi

    from mindthegap.data import load_rows

    repo_id, revision = spec["path"], spec.get("revision")
    with hub_errors(repo_id, revision, kind="dataset", where=where):
        # a generic loader ("json", "parquet") is no repository: nothing to resolve; a repository read through
        # some of its files (data_files: the authors' release, one file per model) still is one
        generic = repo_id in GENERIC_LOADERS
        commit = None if generic else HfApi().dataset_info(repo_id, revision=revision).sha
        name, rows = load_rows(spec)
    log.info("dataset %s: commit %s, %d rows", name, commit, len(rows))
    return {"kind": "dataset", "repo": repo_id, "revision": revision, "commit": commit, "rows": len(rows)}


def prefetch(kind: str, spec: dict[str, Any], root: str | os.PathLike, *, where: str) -> dict[str, Any]:
    """One prefetch job: `kind` model (spec: path, revision) or dataset (a data-source spec)."""
    if kind == "model":
        return prefetch_model(spec["path"], spec.get("revision") or "main", root, where=where)
    if kind == "dataset":
        return prefetch_dataset(spec, where=where)
    raise ValueError(f"prefetch kind {kind!r}: expected 'model' or 'dataset'")
