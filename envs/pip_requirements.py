"""The pip section of a conda env file, as the requirements file conda's pip step would install.

`python envs/pip_requirements.py envs/sampling.yaml > reqs.txt` writes one requirement a line, exactly the
strings of the env file (comments dropped); `make vllm-venv` installs the sampling env this way, and the
tests run pip's resolver on every env file through the same function, so what is checked is what conda runs.
The `-e ${MINDTHEGAP_ROOT}` line is left for pip to expand (it expands ${VAR} in requirements files).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml


def pip_requirements(env_file: Path) -> list[str]:
    """The strings under `dependencies: - pip:` of a conda env file; an error names the file when there is none."""
    spec = yaml.safe_load(Path(env_file).read_text())
    for item in spec.get("dependencies") or []:
        if isinstance(item, dict) and "pip" in item:
            return [str(requirement) for requirement in item["pip"]]
    raise ValueError(f"{env_file}: no `pip:` list under `dependencies`")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python envs/pip_requirements.py ENV_FILE.yaml")
    print("\n".join(pip_requirements(Path(sys.argv[1]))))
