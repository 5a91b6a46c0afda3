"""The conda env files (conda channels cannot be reached here): they parse, and their pins agree with pyproject."""

import re
import tomllib

import pytest
import yaml

from helpers import ROOT


def pins(requirements) -> dict[str, str]:
    found = {}
    for line in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([\w.+]+)", line.split("#")[0].strip())
        if match:
            found[match[1].lower()] = match[2]
    return found


PROJECT = pins(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])


@pytest.mark.parametrize("env", ["cpu", "training", "sampling"])
def test_env_pins_agree_with_pyproject(env):
    spec = yaml.safe_load((ROOT / "envs" / f"{env}.yaml").read_text())
    pip = next(item["pip"] for item in spec["dependencies"] if isinstance(item, dict) and "pip" in item)
    env_pins = pins(pip)
    assert "-e .." in pip, "the env installs this package"
    assert env_pins, env
    for name, version in env_pins.items():
        if env == "sampling" and name == "torch":
            continue  # vLLM brings its own torch build
        if name in PROJECT:
            assert PROJECT[name] == version, f"envs/{env}.yaml pins {name}=={version}, pyproject {PROJECT[name]}"
    if env == "sampling":
        assert "vllm" in env_pins
    if env == "training":
        assert {"trl", "accelerate", "deepspeed"} <= set(env_pins)


@pytest.mark.parametrize("strategy", ["fsdp", "deepspeed", "ddp"])
def test_accelerate_configs_parse(strategy):
    config = yaml.safe_load((ROOT / "envs" / "accelerate" / f"{strategy}.yaml").read_text())
    assert config["distributed_type"] in {"FSDP", "DEEPSPEED", "MULTI_GPU"}
