"""The conda env files: one set of pins with pyproject, each resolvable by pip against the registry, and the
package installable from where Snakemake creates the env.

conda cannot be installed here (its channels are unreachable), so the tests replay what Snakemake 9 and conda
do with an env file's pip section, step for step: Snakemake copies the file to `.snakemake/conda/<hash>.yaml`
and runs `conda env create --file` on the copy (snakemake/deployment/conda.py, `create_env`); conda writes the
pip list to `condaenv.<random>.requirements.txt` beside the copy and runs
`python -m pip install -U -r <that file> --exists-action=b` with that folder as working directory
(conda/env/installers/pip.py). A relative `-e ..` therefore points into `.snakemake/`, not at the checkout.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from helpers import ROOT, load_config, plan_jobs

_spec = importlib.util.spec_from_file_location("pip_requirements", ROOT / "envs" / "pip_requirements.py")
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
pip_requirements = _module.pip_requirements

ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))
PACKAGE_LINE = "-e ${MINDTHEGAP_ROOT}"
PIP_TIMEOUT_S = 600
# pip's words for a registry it could not reach (as opposed to a resolution it could not find)
NETWORK_ERRORS = ("NewConnectionError", "Max retries exceeded", "Temporary failure in name resolution",
                  "Network is unreachable", "Could not fetch URL")


def pins(requirements) -> dict[str, str]:
    found = {}
    for line in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([\w.+]+)", line.split("#")[0].strip())
        if match:
            found[match[1].lower()] = match[2]
    return found


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
CORE = pins(PROJECT["dependencies"])
EXTRAS = {extra: pins(requirements) for extra, requirements in PROJECT["optional-dependencies"].items()}
GPU_TORCH = EXTRAS["gpu"]["torch"]  # vLLM 0.33's torch: every env file's
DEV_TORCH = EXTRAS["cpu"]["torch"]  # the dev venv's and CI's: the CPU build this machine installs offline


def torch_requirement() -> SpecifierSet:
    line = next(item for item in PROJECT["dependencies"] if re.match(r"torch\b", item))
    return SpecifierSet(line.removeprefix("torch"))


def project_pins() -> dict[str, str]:
    """Every `==` pin of pyproject (core and extras) but torch; one version per package."""
    merged: dict[str, str] = {}
    for source in [CORE, *EXTRAS.values()]:
        for name, version in source.items():
            if name != "torch":
                assert merged.setdefault(name, version) == version, \
                    f"pyproject.toml pins {name} twice: {merged[name]} and {version}"
    return merged


def ci() -> bool:
    return os.environ.get("CI") == "true"


# ---------------------------------------------------------------- one set of pins


def test_pyproject_torch_is_the_single_documented_exception():
    """Core torch is a range spanning exactly the two pinned builds; everything else is `==` and unique."""
    project_pins()
    assert EXTRAS["vllm"]["torch"] == GPU_TORCH, "the [vllm] extra needs vLLM's torch"
    requirement = torch_requirement()
    assert DEV_TORCH in requirement and GPU_TORCH in requirement, f"pyproject's torch{requirement}"
    assert "torch" not in CORE, "core torch must stay a range: an `==` pin makes it unresolvable beside vLLM"


def test_dev_venv_installs_the_cpu_torch():
    """`make install` (the README's and CI's venv) asks for the `cpu` extra, else pip would take GPU torch."""
    recipe = re.search(r"^\$\(VENV\)/\.installed:.*?(?=^\S)", (ROOT / "Makefile").read_text(), re.S | re.M)[0]
    extras = re.search(r"pip install .*-e '\.\[([^\]]*)\]'", recipe)[1].split(",")
    assert {"cpu", "workflow", "test"} <= set(extras), recipe


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda path: path.stem)
def test_env_pins_agree_with_pyproject(env_file):
    requirements = pip_requirements(env_file)
    env_pins = pins(requirements)
    assert PACKAGE_LINE in requirements, f"{env_file.name}: the env installs this checkout with `{PACKAGE_LINE}`"
    assert not any(line.startswith("-e ..") or line == "-e ." for line in requirements), \
        f"{env_file.name}: a relative path resolves against .snakemake/conda/, where conda runs pip"
    assert env_pins.get("torch") == GPU_TORCH, f"{env_file.name} pins torch=={env_pins.get('torch')}, not {GPU_TORCH}"
    expected = project_pins()
    for name, version in env_pins.items():
        if name in expected:
            assert version == expected[name], f"{env_file.name} pins {name}=={version}, pyproject {expected[name]}"
    if env_file.stem == "sampling":
        assert env_pins["vllm"] == EXTRAS["vllm"]["vllm"]
    if env_file.stem == "training":
        assert {"trl", "accelerate", "deepspeed"} <= set(env_pins)


def test_env_files_agree_with_each_other():
    """Packages pinned outside pyproject (deepspeed) carry one version across the env files too."""
    seen: dict[str, tuple[str, str]] = {}
    for env_file in ENV_FILES:
        for name, version in pins(pip_requirements(env_file)).items():
            first = seen.setdefault(name, (version, env_file.name))
            assert first[0] == version, f"{name}: {first[1]} pins {first[0]}, {env_file.name} pins {version}"


@pytest.mark.parametrize("strategy", ["fsdp", "deepspeed", "ddp"])
def test_accelerate_configs_parse(strategy):
    config = yaml.safe_load((ROOT / "envs" / "accelerate" / f"{strategy}.yaml").read_text())
    assert config["distributed_type"] in {"FSDP", "DEEPSPEED", "MULTI_GPU"}


# ---------------------------------------------------------------- conda's pip step, replayed


@pytest.fixture(scope="session")
def snakefile_environ(tmp_path_factory) -> dict[str, str]:
    """The environment after the Snakefile is parsed: what Snakemake hands to `conda env create`."""
    saved = os.environ.pop("MINDTHEGAP_ROOT", None)
    try:
        plan_jobs(load_config("demo.yaml"), tmp_path_factory.mktemp("parse"), restore_environment=False)
        return dict(os.environ)
    finally:
        os.environ.pop("MINDTHEGAP_ROOT", None)
        if saved is not None:
            os.environ["MINDTHEGAP_ROOT"] = saved


def conda_pip_step(env_file: Path, workdir: Path, python: str, environ: dict[str, str],
                   *pip_options: str) -> subprocess.CompletedProcess:
    """Run conda's pip step for `env_file` as `snakemake --sdm conda` in `workdir` would (module docstring)."""
    conda_dir = workdir / ".snakemake" / "conda"
    conda_dir.mkdir(parents=True, exist_ok=True)
    env_copy = conda_dir / f"{env_file.stem}-copy.yaml"  # Snakemake names it <hash>.yaml; the folder matters
    shutil.copyfile(env_file, env_copy)
    requirements = conda_dir / "condaenv.replay.requirements.txt"
    requirements.write_text("\n".join(pip_requirements(env_copy)))
    command = [python, "-m", "pip", "install", "-U", "-r", str(requirements), "--exists-action=b", *pip_options]
    return subprocess.run(command, cwd=conda_dir, env=environ, capture_output=True, text=True,
                          timeout=PIP_TIMEOUT_S)


def pip_failure(env_file: Path, result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if "is ignored: it is neither" not in line]
    return f"pip rejects {env_file.relative_to(ROOT)} (exit {result.returncode}):\n" + "\n".join(lines[-40:])


def require_registry(result: subprocess.CompletedProcess) -> None:
    if result.returncode and any(word in result.stderr for word in NETWORK_ERRORS):
        message = "the package registry cannot be reached: the env files were not resolved"
        pytest.fail(message + " (CI must reach it)") if ci() else pytest.skip(message)


def env_python_version(env_file: Path) -> str:
    spec = yaml.safe_load(env_file.read_text())
    return next(str(item).split("=", 1)[1] for item in spec["dependencies"] if str(item).startswith("python="))


@pytest.mark.slow  # ~80 s for the three files, and the registry must be reachable: not in `make test-fast`
@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda path: path.stem)
def test_env_resolves_against_the_registry(env_file, tmp_path, snakefile_environ):
    """pip's resolver, dry run against the registry, on the env's pip list including this package's own
    dependencies, run exactly as conda runs it from where Snakemake puts the env file."""
    wanted = env_python_version(env_file)
    if f"{sys.version_info.major}.{sys.version_info.minor}" != wanted:
        message = f"{env_file.name} wants python {wanted}; resolving with {sys.version.split()[0]} proves nothing"
        pytest.fail(message) if ci() else pytest.skip(message)
    report = tmp_path / "report.json"
    result = conda_pip_step(env_file, tmp_path, sys.executable, snakefile_environ,
                            "--dry-run", "--ignore-installed", "--quiet", "--report", str(report))
    require_registry(result)
    assert result.returncode == 0, pip_failure(env_file, result)
    resolved = {item["metadata"]["name"].lower(): item for item in json.loads(report.read_text())["install"]}
    for name, version in pins(pip_requirements(env_file)).items():
        assert resolved[name]["metadata"]["version"].split("+")[0] == version, (env_file.name, name)
    assert resolved["mindthegap"]["download_info"]["url"] == ROOT.as_uri(), "the env must install this checkout"


def test_snakefile_exports_the_checkout_for_the_env_files(snakefile_environ):
    assert snakefile_environ.get("MINDTHEGAP_ROOT") == str(ROOT)


@pytest.mark.slow
def test_package_installs_where_snakemake_creates_the_env(tmp_path, snakefile_environ):
    """A real editable install of the env files' package line into a fresh venv, from .snakemake/conda/:
    the venv then imports `mindthegap` from this checkout's src/."""
    package_lines = {line for env_file in ENV_FILES for line in pip_requirements(env_file) if line.startswith("-e")}
    assert package_lines == {PACKAGE_LINE}, package_lines
    target = tmp_path / "env"
    venv.create(target, with_pip=True)
    python = str(target / "bin" / "python")
    only_the_package = tmp_path / "package-only.yaml"
    only_the_package.write_text(yaml.safe_dump({"dependencies": ["python=3.11", "pip", {"pip": [PACKAGE_LINE]}]}))
    result = conda_pip_step(only_the_package, tmp_path, python, snakefile_environ, "--no-deps", "--quiet")
    require_registry(result)  # the build backend (setuptools) comes from the registry
    assert result.returncode == 0, pip_failure(only_the_package, result)
    where = subprocess.run([python, "-c", "import importlib.util; print(importlib.util.find_spec('mindthegap').origin)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path).stdout.strip()
    assert Path(where) == ROOT / "src" / "mindthegap" / "__init__.py"
