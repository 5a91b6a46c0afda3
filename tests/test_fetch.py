"""The hub prefetch (mindthegap.fetch, rules/fetch.smk): downloads through huggingface_hub's real calls against a
cache laid out like the hub's, offline loads from it, the errors that say what to do, and the workflow wiring."""

import os
import shutil
import subprocess
import sys

import httpx2
import pytest
from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                    RevisionNotFoundError)

from mindthegap import fetch

COMMIT = "0123456789abcdef0123456789abcdef01234567"
HUB_VARIABLES = ("HF_HUB_CACHE", "HF_DATASETS_CACHE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def hub_cache_with(root, repo_id, model_dir, commit=COMMIT):
    """`root`/hub laid out as huggingface_hub leaves it after a download: refs/main -> commit, snapshots/<commit>."""
    repo = root / "hub" / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return repo


def test_hub_environment_points_every_library_at_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRATCH", str(tmp_path))
    env = fetch.hub_environment("$SCRATCH/hf", offline=True)
    assert env["HF_HUB_CACHE"] == str(tmp_path / "hf" / "hub")
    assert env["HF_DATASETS_CACHE"] == str(tmp_path / "hf" / "datasets")
    assert {env[k] for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")} == {"1"}
    assert "HF_HOME" not in env, "HF_HOME holds the user's token: it must not move"
    assert fetch.hub_environment("rel", offline=False)["HF_HUB_OFFLINE"] == "0"
    assert os.path.isabs(fetch.hub_environment("rel", offline=False)["HF_HUB_CACHE"])


def test_prefetch_model_resolves_the_revision_and_records_the_commit(tiny_model_dir, tmp_path):
    hub_cache_with(tmp_path, "org/tiny", tiny_model_dir)
    marker = fetch.prefetch_model("org/tiny", "main", tmp_path, where="models.tiny", local_files_only=True)
    assert marker["commit"] == COMMIT and marker["revision"] == "main"
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(marker["files"])
    pinned = fetch.prefetch_model("org/tiny", COMMIT, tmp_path, where="models.tiny", local_files_only=True)
    assert pinned["commit"] == COMMIT


def test_jobs_load_the_prefetched_model_offline_through_the_environment(tiny_model_dir, tmp_path):
    """A job's view: only the environment of hub_environment(offline=True), the hub id and the revision."""
    hub_cache_with(tmp_path, "org/tiny", tiny_model_dir)
    env = {**os.environ, **fetch.hub_environment(tmp_path, offline=True)}
    code = ("from transformers import AutoModelForCausalLM, AutoTokenizer\n"
            "AutoTokenizer.from_pretrained('org/tiny', revision='main')\n"
            "m = AutoModelForCausalLM.from_pretrained('org/tiny', revision='main')\n"
            "print(type(m).__name__)")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "Qwen2ForCausalLM"
    code = "from huggingface_hub import constants; print(constants.HF_HUB_OFFLINE, constants.HF_HUB_CACHE)"
    done = subprocess.run([sys.executable, "-c", "from mindthegap.fetch import use_hub_cache; "
                           f"use_hub_cache({str(tmp_path)!r}, offline=True); " + code],
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["True", str(tmp_path / "hub")], done.stderr[-2000:]


def test_use_hub_cache_after_the_hub_was_imported_is_an_error(tmp_path, monkeypatch):
    import huggingface_hub  # noqa: F401 - imported, as in this test process

    for key in HUB_VARIABLES:  # register each for restoration, whatever happens
        monkeypatch.setenv(key, "placeholder")
        monkeypatch.delenv(key)
    with pytest.raises(RuntimeError, match="imported before use_hub_cache"):
        fetch.use_hub_cache(tmp_path / "elsewhere", offline=True)
    assert "HF_HUB_CACHE" not in os.environ, "nothing applied when refusing"


def test_a_model_missing_from_the_cache_says_to_run_the_prefetch(tmp_path):
    (tmp_path / "hub").mkdir()
    with pytest.raises(fetch.HubAccessError, match=r"model org/absent@main \(models.absent\) is not in the hub "
                                                   r"cache.*--until prefetch") as caught:
        fetch.prefetch_model("org/absent", "main", tmp_path, where="models.absent", local_files_only=True)
    assert isinstance(caught.value.__cause__, LocalEntryNotFoundError)


def test_a_snapshot_without_weights_is_refused(tiny_model_dir, tmp_path):
    repo = hub_cache_with(tmp_path, "org/tiny", tiny_model_dir)
    (repo / "snapshots" / COMMIT / "model.safetensors").unlink()
    with pytest.raises(fetch.HubAccessError, match=r"org/tiny@main \(models.tiny\): no weights"):
        fetch.prefetch_model("org/tiny", "main", tmp_path, where="models.tiny", local_files_only=True)


def _response(status):
    return httpx2.Response(status, request=httpx2.Request("GET", "https://huggingface.co/api/models/x"))


@pytest.mark.parametrize("error,expected", [
    (GatedRepoError("403 gated", response=_response(403)),
     r"model meta-llama/Llama-3.1-8B-Instruct \(models.llama\) is gated.*request access on "
     r"https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct.*hf auth login.*HF_TOKEN"),
    (RepositoryNotFoundError("404", response=_response(404)),
     r"model meta-llama/Llama-3.1-8B-Instruct \(models.llama\) is not on the Hugging Face hub.*HF_TOKEN"),
    (RevisionNotFoundError("404 revision", response=_response(404)),
     r"has no revision 'v9'.*commits/main"),
])
def test_hub_errors_name_the_repository_and_the_fix(error, expected):
    with pytest.raises(fetch.HubAccessError, match=expected) as caught:
        with fetch.hub_errors("meta-llama/Llama-3.1-8B-Instruct", "v9", kind="model", where="models.llama"):
            raise error
    assert caught.value.__cause__ is error


def test_hub_errors_look_through_the_wrappers_of_datasets():
    from datasets.exceptions import DatasetNotFoundError

    def load():
        try:
            raise GatedRepoError("403", response=_response(403))
        except GatedRepoError as err:  # what datasets.load_dataset does with it
            raise DatasetNotFoundError("Dataset 'AI-MO/NuminaMath-CoT' is a gated dataset on the Hub.") from err

    with pytest.raises(fetch.HubAccessError, match=r"dataset AI-MO/NuminaMath-CoT \(problems\) is gated.*"
                                                   r"https://huggingface.co/datasets/AI-MO/NuminaMath-CoT"):
        with fetch.hub_errors("AI-MO/NuminaMath-CoT", "main", kind="dataset", where="problems"):
            load()
    with pytest.raises(ZeroDivisionError):  # other errors pass unchanged
        with fetch.hub_errors("a/b", "main", kind="model", where="models.b"):
            1 / 0


def test_hub_ids_and_local_directories(tmp_path):
    assert fetch.is_hub_id("Qwen/Qwen2.5-Math-7B")
    assert not fetch.is_hub_id(str(tmp_path))


def test_paper_config_prefetches_each_hub_model_once_and_its_jobs_wait_for_it(tmp_path, monkeypatch):
    from helpers import paper_config, plan_jobs

    for key in HUB_VARIABLES:  # the workflow sets them in the planning process: restore them afterwards
        monkeypatch.setenv(key, "placeholder")
        monkeypatch.delenv(key)
    cfg = paper_config()
    cfg["hub_cache"] = str(tmp_path / "cache")
    jobs = plan_jobs(cfg, tmp_path, restore_environment=False)
    prefetches = {job.wildcards.name: job for job in jobs if job.rule.name == "prefetch"}
    assert set(prefetches) >= set(cfg["models"])
    qwen = prefetches["qwen25_math_7b"]
    assert qwen.params.spec == {"path": "Qwen/Qwen2.5-Math-7B", "revision": cfg["models"]["qwen25_math_7b"]["revision"]}
    assert qwen.params.kind == "model" and qwen.params.where == "models.qwen25_math_7b"
    assert qwen.resources.slurm_partition == cfg["resources"]["cpu_partition"]
    problems = next(job for job in jobs if job.rule.name == "prepare_problems")
    assert [str(path) for path in problems.input] == ["results/prefetch/problems/numina_cot_50k.json"]
    marker = "results/prefetch/model/qwen25_math_7b.json"
    for rule in ("sample", "train", "evaluate_sample"):  # evaluation: of the base model
        job = next(j for j in jobs if j.rule.name == rule and j.wildcards.model == "qwen25_math_7b"
                   and (rule != "evaluate_sample" or j.wildcards.run == "base"))
        inputs = {str(path): path for path in job.input}
        assert marker in inputs, f"{rule} must wait for the prefetch"
        assert inputs[marker].flags.get("ancient"), "a re-fetch alone must not rerun it"
    # the jobs inherit the offline environment from the workflow
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_HUB_CACHE"] == str(tmp_path / "cache" / "hub")

