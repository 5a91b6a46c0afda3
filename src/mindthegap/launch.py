"""How a training job starts its processes, and its resumable work directory.

* one GPU (or none): `train()` in this process;
* several GPUs on one node: `accelerate launch` with `envs/accelerate/<strategy>.yaml`, one process per GPU;
* several nodes: `srun` starts one `accelerate launch` per node; the rendezvous host is the first node of the job,
  computed inside the srun step (the Snakemake jobstep strips SLURM_JOB_NODELIST from the job's own shell).

The work directory (Trainer checkpoints, not a declared output) carries a fingerprint of what it was trained on:
checkpoints made with other hyper-parameters, another dataset or another model are discarded instead of resumed.
It is removed once the final model is published, so a later rerun never resumes a finished run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STRATEGIES = ("fsdp", "deepspeed", "ddp")


def train_argv(dataset: str, model: str, output: str, work_dir: str, hparams: dict[str, Any],
               revision: str | None = None) -> list[str]:
    """Arguments of `mindthegap train` (the entry point of every training process)."""
    argv = ["--dataset", str(dataset), "--model", str(model), "--output", str(output), "--work-dir", str(work_dir),
            "--hparams", json.dumps(hparams, sort_keys=True)]
    return argv + (["--revision", revision] if revision else [])


def launch_command(argv: list[str], *, gpus_per_node: int, nodes: int = 1, config_file: str | Path,
                   cpus_per_node: int = 1, python: str = sys.executable, port: int = 29500) -> list[str]:
    """The command that starts `gpus_per_node` × `nodes` training processes (`mindthegap train <argv>`)."""
    if gpus_per_node < 1 or nodes < 1:
        raise ValueError(f"gpus_per_node={gpus_per_node}, nodes={nodes}: both must be >= 1")
    accelerate = [python, "-m", "accelerate.commands.launch", "--config_file", str(config_file),
                  "--num_machines", str(nodes), "--num_processes", str(gpus_per_node * nodes)]
    program = ["--module", "mindthegap.cli", "train", *argv]
    if nodes == 1:
        return [*accelerate, "--machine_rank", "0", *program]
    per_node = (shlex.join(accelerate) + ' --machine_rank "$SLURM_NODEID"'
                + ' --main_process_ip "$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"'
                + f" --main_process_port {port} " + shlex.join(program))
    return ["srun", f"--nodes={nodes}", f"--ntasks={nodes}", "--ntasks-per-node=1", f"--cpus-per-task={cpus_per_node}",
            f"--gpus-per-node={gpus_per_node}", "bash", "-c", per_node]


def fingerprint(dataset: str, model: str, hparams: dict[str, Any], revision: str | None) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(dataset, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return {"dataset_sha256": digest.hexdigest(), "model": str(model), "revision": revision, "hparams": hparams}


def prepare_work_dir(work_dir: str | Path, print_: dict[str, Any]) -> bool:
    """Keep the checkpoints of `work_dir` when they were made from the same inputs; else start it afresh.
    Returns True when there is something to resume from."""
    work_dir = Path(work_dir)
    marker = work_dir / "fingerprint.json"
    if work_dir.exists() and (not marker.exists() or json.loads(marker.read_text()) != print_):
        log.info("discarding checkpoints in %s: made from other inputs or settings", work_dir)
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(print_, sort_keys=True))
    for checkpoint in work_dir.glob("checkpoint-*"):
        # the Trainer writes trainer_state.json last: without it, the job was killed while saving
        if not (checkpoint / "trainer_state.json").exists():
            log.info("discarding incomplete checkpoint %s", checkpoint)
            shutil.rmtree(checkpoint)
    return any(work_dir.glob("checkpoint-*"))


def run_training(dataset: str, model: str, output: str, work_dir: str, hparams: dict[str, Any], *,
                 revision: str | None = None, gpus_per_node: int = 1, nodes: int = 1, strategy: str = "fsdp",
                 accelerate_dir: str | Path, cpus_per_node: int = 1) -> dict[str, Any]:
    """Train with as many processes as GPUs; resume from `work_dir`; publish into `output`; clear `work_dir`."""
    if strategy not in STRATEGIES:
        raise ValueError(f"training strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    if prepare_work_dir(work_dir, fingerprint(dataset, model, hparams, revision)):
        log.info("work directory %s has checkpoints: resuming", work_dir)
    if gpus_per_node <= 1 and nodes == 1:
        from mindthegap.training import train

        summary = train(dataset, model, output, work_dir, hparams, revision=revision)
    else:
        command = launch_command(train_argv(dataset, model, output, work_dir, hparams, revision),
                                 gpus_per_node=gpus_per_node, nodes=nodes, cpus_per_node=cpus_per_node,
                                 config_file=Path(accelerate_dir) / f"{strategy}.yaml")
        log.info("launching: %s", shlex.join(command))
        try:  # the processes' output goes where this job's stderr goes: its Snakemake log
            sys.stderr.flush()
            stream = sys.stderr if sys.stderr.fileno() >= 0 else None
        except (AttributeError, OSError, ValueError):
            stream = None
        subprocess.run(command, check=True, stdout=stream, stderr=subprocess.STDOUT if stream else None)
        summary = json.loads((Path(output) / "training_log.json").read_text())["summary"]
    shutil.rmtree(work_dir, ignore_errors=True)  # the final model is published: nothing left to resume
    return summary
