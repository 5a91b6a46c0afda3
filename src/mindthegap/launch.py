"""How a training job starts its processes, and its resumable work directory.

* one GPU (or none): `train()` in this process;
* several GPUs on one node: `accelerate launch` with `envs/accelerate/<strategy>.yaml`, one process per GPU;
* several nodes: `srun` starts one `accelerate launch` per node; the rendezvous host is the first node of the job,
  computed inside the srun step (the Snakemake jobstep strips SLURM_JOB_NODELIST from the job's own shell).

Rendezvous ports: several training jobs may share a node, so none uses a fixed port. On one node the launcher picks
a free port itself (`--main_process_port 0`); across nodes every node must agree on the port before any of them
starts, so it is a function of the SLURM job id, in a range below Linux's ephemeral ports (where the free ports of
single-node jobs come from).

The process layout (GPUs × nodes, per-device batch, gradient accumulation) is part of the rule's params and of the
work directory's fingerprint: a layout that changes the batch arithmetic retrains instead of reusing a model or
resuming checkpoints made with another one.

The work directory (Trainer checkpoints, not a declared output) carries a fingerprint of what it was trained on:
checkpoints made with other hyper-parameters, another dataset or another model are discarded instead of resumed.
It is removed once the final model is published, so a later rerun never resumes a finished run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STRATEGIES = ("fsdp", "deepspeed", "ddp")


# multi-node rendezvous ports: above the common service ports, below the ephemeral range (32768-60999 on Linux)
RENDEZVOUS_PORTS = range(20000, 32000)


def gradient_accumulation(global_batch_size: int, per_device_batch_size: int, world_size: int) -> int:
    """Accumulation steps so that per-device batch × processes × steps is exactly the global batch."""
    per_step = per_device_batch_size * world_size
    if global_batch_size % per_step:
        raise ValueError(
            f"training.global_batch_size={global_batch_size} is not a multiple of per_device_batch_size "
            f"({per_device_batch_size}) × training processes ({world_size}) = {per_step}: change "
            f"training.per_device_batch_size or resources.training_gpus / training_nodes")
    return global_batch_size // per_step


def training_layout(hparams: dict[str, Any], gpus_per_node: int, nodes: int) -> dict[str, int]:
    """The process layout of one training job and the batch arithmetic it implies (rule params, fingerprint)."""
    world = gpus_per_node * nodes
    per_device = int(hparams["per_device_batch_size"])
    return {"gpus_per_node": gpus_per_node, "nodes": nodes, "world_size": world,
            "per_device_batch_size": per_device,
            "gradient_accumulation_steps": gradient_accumulation(int(hparams["global_batch_size"]), per_device, world)}


def rendezvous_port(job_id: str | int) -> int:
    """The multi-node rendezvous port of a SLURM job: the same on every node, different for jobs sharing a node
    (unless their ids differ by a multiple of the range's length)."""
    return RENDEZVOUS_PORTS.start + int(job_id) % len(RENDEZVOUS_PORTS)


def train_argv(dataset: str, model: str, output: str, work_dir: str, hparams: dict[str, Any],
               revision: str | None = None) -> list[str]:
    """Arguments of `mindthegap train` (the entry point of every training process)."""
    argv = ["--dataset", str(dataset), "--model", str(model), "--output", str(output), "--work-dir", str(work_dir),
            "--hparams", json.dumps(hparams, sort_keys=True)]
    return argv + (["--revision", revision] if revision else [])


def launch_command(argv: list[str], *, gpus_per_node: int, nodes: int = 1, config_file: str | Path,
                   cpus_per_node: int = 1, python: str = sys.executable, job_id: str | None = None) -> list[str]:
    """The command that starts `gpus_per_node` × `nodes` training processes (`mindthegap train <argv>`).
    `job_id` (several nodes only; default $SLURM_JOB_ID) fixes the rendezvous port."""
    if gpus_per_node < 1 or nodes < 1:
        raise ValueError(f"gpus_per_node={gpus_per_node}, nodes={nodes}: both must be >= 1")
    accelerate = [python, "-m", "accelerate.commands.launch", "--config_file", str(config_file),
                  "--num_machines", str(nodes), "--num_processes", str(gpus_per_node * nodes)]
    program = ["--module", "mindthegap.cli", "train", *argv]
    if nodes == 1:  # port 0: accelerate binds a free port itself, so jobs sharing the node never collide
        return [*accelerate, "--machine_rank", "0", "--main_process_port", "0", *program]
    job_id = job_id or os.environ.get("SLURM_JOB_ID")
    if not job_id:
        raise RuntimeError(f"a {nodes}-node training needs SLURM_JOB_ID (it runs inside a SLURM allocation)")
    per_node = (shlex.join(accelerate) + ' --machine_rank "$SLURM_NODEID"'
                + ' --main_process_ip "$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"'
                + f" --main_process_port {rendezvous_port(job_id)} " + shlex.join(program))
    return ["srun", f"--nodes={nodes}", f"--ntasks={nodes}", "--ntasks-per-node=1", f"--cpus-per-task={cpus_per_node}",
            f"--gpus-per-node={gpus_per_node}", "bash", "-c", per_node]


def fingerprint(dataset: str, model: str, hparams: dict[str, Any], revision: str | None,
                layout: dict[str, int] | None = None) -> dict[str, Any]:
    """What the checkpoints of a work directory were made from; `layout`: `training_layout()`."""
    digest = hashlib.sha256()
    with open(dataset, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return {"dataset_sha256": digest.hexdigest(), "model": str(model), "revision": revision, "hparams": hparams,
            "layout": layout}


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
    layout = training_layout(hparams, gpus_per_node, nodes)  # raises when the global batch does not divide
    if prepare_work_dir(work_dir, fingerprint(dataset, model, hparams, revision, layout)):
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
