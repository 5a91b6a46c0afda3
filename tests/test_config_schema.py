"""The config schema is strict and its errors are short: a typo anywhere is refused, naming the key's full path, the
config file in use and the closest valid key, in a few lines (Snakemake's own message printed the whole schema)."""

from __future__ import annotations

import copy
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import ROOT, SNAKEMAKE, load_config
from mindthegap.config_check import MAX_ERRORS, ConfigError, check_config
from mindthegap.rehearsal import derive_config

SCHEMA = ROOT / "config" / "schema.yaml"
MAX_LINES = 20  # what a user reads of a config error, Snakemake's own lines included


def dry_run(cfg: dict, workdir: Path, *extra: str) -> tuple[Path, subprocess.CompletedProcess]:
    """`snakemake -n --configfile <workdir>/config.yaml` as a user types it; returns the file and the run."""
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    result = subprocess.run([SNAKEMAKE, "-n", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
                             "--cores", "1", "--configfile", str(path), *extra],
                            capture_output=True, text=True, timeout=300)
    return path, result


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    """Our message in a refused run: from its header to Snakemake's one-line traceback (`File ...`) that follows.
    The whole output, Snakemake's lines included, must be fewer than MAX_LINES lines."""
    output = (result.stdout + result.stderr).splitlines()
    assert result.returncode != 0, "the config was accepted:\n" + "\n".join(output[-20:])
    assert len(output) < MAX_LINES, "\n".join(output)
    start = next(i for i, line in enumerate(output) if line.startswith("Invalid config in "))
    end = next((i for i, line in enumerate(output) if i > start and line.startswith('  File "')), len(output))
    return output[start:end]


def slurm_variant_config() -> dict:
    """tests/slurm's variant of the demo config (loaded by path: its folder is a separate test package)."""
    folder = ROOT / "tests" / "slurm"
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location("slurm_pipeline_for_schema", folder / "test_pipeline_slurm.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
    cfg = module.variant_config()
    cfg["training"].update(epochs=40, save_steps=5, logging_steps=1)  # its fault test's rerun
    return cfg


def shipped_and_derived_configs() -> dict[str, dict]:
    paper, demo = load_config("config.yaml"), load_config("demo.yaml")
    overridden = copy.deepcopy(demo)
    overridden["methods"]["dr_dft"]["training"] = {"learning_rate": 5e-4, "save_total_limit": 3}
    return {"paper": paper, "demo": demo, "demo with a method override": overridden,
            "rehearsal": derive_config(copy.deepcopy(paper), Path("/inputs"), Path("/benchmarks")),
            "slurm variant": slurm_variant_config()}


@pytest.mark.parametrize("name", list(shipped_and_derived_configs()))
def test_every_config_the_project_runs_is_valid(name):
    cfg = copy.deepcopy(shipped_and_derived_configs()[name])
    check_config(cfg, SCHEMA, [name])
    assert cfg["grader"]["timeout"] == 3.0 and cfg["resources"]["requeue"] is True  # defaults filled in


def test_defaults_fill_the_shared_training_values_but_not_a_methods_overrides():
    """A method's `training` shares the definition of `training`: its defaults would override the shared values."""
    cfg = load_config("demo.yaml")
    del cfg["training"]["gradient_checkpointing"]
    cfg["methods"]["dr_dft"]["training"] = {"learning_rate": 5e-4}
    check_config(cfg, SCHEMA, ["demo.yaml"])
    assert cfg["training"]["gradient_checkpointing"] is False and cfg["training"]["max_steps"] == -1
    assert cfg["methods"]["dr_dft"]["training"] == {"learning_rate": 5e-4}


def _set(path: str, value):
    """A change to the demo config: `value` at the dotted `path`."""
    def change(cfg: dict) -> None:
        *parents, key = path.split(".")
        node = cfg
        for parent in parents:
            node = node.setdefault(parent, {})
        node[key] = value
    return change


TYPOS = [  # (where the typo goes, its value, the key the user meant)
    ("extensons", True, "extensions"),
    ("models.tiny.stop_token", ["<|im_end|>"], "stop_tokens"),
    ("demo_model.step", 10, "steps"),
    ("problems.sed", 3, "seed"),
    ("benchmarks.arith_test.splt", "test", "split"),
    ("benchmarks.arith_test.fields.problm", "question", "problem"),
    ("sampling.chunksize", 8, "chunk_size"),
    ("sampling.guided.temprature", 0.5, "temperature"),
    ("grader.worker", 2, "workers"),
    ("rewrite.sed", 1, "seed"),
    ("training.gradient_checkpointng", True, "gradient_checkpointing"),
    ("methods.dr_dft.extention", True, "extension"),
    ("methods.dr_dft.trainig", {"learning_rate": 1e-5}, "training"),
    ("methods.dr_dft.training.learnng_rate", 1e-5, "learning_rate"),
    ("evaluation.temprature", 0.5, "temperature"),
    ("resources.training_gpu", 2, "training_gpus"),
]


@pytest.mark.parametrize(("key", "value", "meant"), TYPOS, ids=[key for key, _, _ in TYPOS])
def test_a_typo_is_refused_naming_its_path_the_file_and_the_key_meant(tmp_path, key, value, meant):
    cfg = load_config("demo.yaml")
    _set(key, value)(cfg)
    path, result = dry_run(cfg, tmp_path)
    lines = error_lines(result)
    assert lines[0] == f"Invalid config in {path} (checked against {SCHEMA}):"
    assert lines[1] == f"  {key}: unknown key; did you mean {meant!r}?"


def test_an_unknown_key_without_a_close_match_lists_the_valid_keys(tmp_path):
    cfg = load_config("demo.yaml")
    cfg["grader"]["parallelism"] = 4
    _, result = dry_run(cfg, tmp_path)
    assert error_lines(result)[1] == "  grader.parallelism: unknown key; valid keys here: timeout, workers"


def test_values_given_with_config_are_named_as_a_source(tmp_path):
    """Without --configfile the paper's config is in use, and `--config` values merge into it."""
    result = subprocess.run([SNAKEMAKE, "-n", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
                             "--cores", "1", "--config", "grader={worker: 2}"],
                            capture_output=True, text=True, timeout=300)
    lines = error_lines(result)
    assert lines[0] == f"Invalid config in config/config.yaml, --config values (checked against {SCHEMA}):"
    assert lines[1] == "  grader.worker: unknown key; did you mean 'workers'?"


BAD_VALUES = [  # (change to the demo config, the line that names it)
    (_set("sampling.self.n", 0), "sampling.self.n: 0 is less than the minimum of 1"),
    (_set("models.tiny.path", "Qwen/Qwen2.5-Math-7B"), "models.tiny: needs exactly one of path or build"),
    (lambda cfg: cfg["training"].pop("learning_rate"), "training: missing required key 'learning_rate'"),
    (_set("extensions", "true"), "extensions: 'true' is not of type 'boolean'"),
    (_set("methods.dr_psft.loss", "ppo"),
     "methods.dr_psft.loss: 'ppo' is not one of ['sft', 'dft', 'is', 'power', 'asft', 'proximal']"),
    (_set("methods.dr_psft.loss_args", {"clip_hi": 0.3}),
     "methods.dr_psft.loss_args.clip_hi: unknown key; did you mean 'clip_high'?"),
]


@pytest.mark.parametrize(("change", "line"), BAD_VALUES, ids=[line.split(":")[0] for _, line in BAD_VALUES])
def test_a_bad_value_is_one_line_naming_its_key(tmp_path, change, line):
    cfg = load_config("demo.yaml")
    change(cfg)
    assert error_lines(dry_run(cfg, tmp_path)[1])[1:] == [f"  {line}"]


def test_many_errors_are_capped(tmp_path):
    cfg = load_config("demo.yaml")
    for index in range(MAX_ERRORS + 3):
        cfg["training"][f"typo_{index}"] = 1
    lines = error_lines(dry_run(cfg, tmp_path)[1])
    assert len(lines) == 1 + MAX_ERRORS + 1 and lines[-1] == "  ... and 3 more"


def test_check_config_raises_config_error_naming_the_source():
    cfg = load_config("demo.yaml")
    cfg["training"]["gradient_checkpointng"] = True
    with pytest.raises(ConfigError, match=r"^Invalid config in my.yaml .*\n  training.gradient_checkpointng: "):
        check_config(cfg, SCHEMA, ["my.yaml"])


def test_seeds_are_set_for_all_methods_at_once():
    """`training.seeds` replaces `training.seed`; a method cannot have its own seeds (the tables compare methods
    over the same seeds)."""
    cfg = load_config("demo.yaml")
    cfg["training"]["seed"] = cfg["training"].pop("seeds")[0]
    cfg["methods"]["dr_dft"]["training"] = {"seeds": [1, 2]}
    with pytest.raises(ConfigError) as error:
        check_config(cfg, SCHEMA, ["my.yaml"])
    assert str(error.value).splitlines()[1:] == [
        "  methods.dr_dft.training: seeds not allowed here (per-method overrides of `training`; not `seeds`: every "
        "method trains once per seed of training.seeds)",
        "  training.seed: unknown key; did you mean 'seeds'?"]
    fine = load_config("config.yaml")
    check_config(fine, SCHEMA, ["config.yaml"])
    assert fine["training"]["seeds"] == [42] and fine["rewrite"]["rounds"] == 1  # the paper: one seed, one round
