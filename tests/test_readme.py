"""Every command of the README's code blocks runs as a newcomer would type it (Snakemake ones as dry runs).

They run in a copy of the checkout's layout (links to its files) where, as the README's step 2 asks, the harness's
benchmark files sit under data/benchmarks; the `make` targets are run by their own tests and by CI.
"""

import os
import re
import shlex
import subprocess

import pytest

from helpers import ROOT, SNAKEMAKE, harness_benchmarks

CHECKOUT = ["Snakefile", "rules", "scripts", "envs", "config", "profiles", "report", "src", "data"]


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith(("make ", "#"))]


def test_the_readme_has_commands():
    commands = readme_commands()
    assert any(c.startswith("snakemake -n --profile profiles/slurm") for c in commands)
    assert any(" grade " in c for c in commands)


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_runs(command, tmp_path):
    argv = shlex.split(command)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if argv[0] == "snakemake":
        if "--report" in argv:  # a report needs a finished run: tests/test_demo.py builds the demo's; plan it here
            at = argv.index("--report")
            argv = argv[:at] + argv[at + 2:]
        cwd = tmp_path
        for name in CHECKOUT:
            if name != "data":
                (cwd / name).symlink_to(ROOT / name)
        (cwd / "data").mkdir()
        (cwd / "data" / "paper").symlink_to(ROOT / "data" / "paper")
        (cwd / "data" / "benchmarks").symlink_to(harness_benchmarks())  # README step 2
        argv = [SNAKEMAKE, *argv[1:], *([] if "-n" in argv else ["-n"]), "--quiet", "rules"]
    elif argv[0].endswith("mindthegap") and argv[1] == "grade":
        cwd = tmp_path
        (cwd / "pairs.jsonl").write_text('{"gold": "\\\\frac{1}{2}", "pred": "so \\\\boxed{0.5}"}\n')
        argv = [str(ROOT / argv[0]), *argv[1:]]
    else:
        pytest.fail(f"README command without a test recipe: {command}")
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
