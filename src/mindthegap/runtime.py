"""What every Snakemake script needs first: its log file, and the shard it works on."""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
from pathlib import Path


def setup_logging(log_path: str | None) -> None:
    """Send logging, warnings and stderr of this job to its Snakemake log file."""
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        stream = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the job
        sys.stderr = stream
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    # where the job ran and on which devices (the SLURM tests check that GPU rules, and only they, were given GPUs)
    logging.info("job environment: host=%s SLURM_JOB_ID=%s CUDA_VISIBLE_DEVICES=%s", socket.gethostname(),
                 os.environ.get("SLURM_JOB_ID", ""), os.environ.get("CUDA_VISIBLE_DEVICES", ""))


def parse_scatteritem(item: str) -> tuple[int, int]:
    """'3-of-8' (Snakemake's scatter naming, 1-based) -> (2, 8)."""
    match = re.fullmatch(r"(\d+)-of-(\d+)", item)
    if not match:
        raise ValueError(f"not a scatter item: {item!r} (expected like '1-of-8')")
    index, count = int(match[1]), int(match[2])
    if not 1 <= index <= count:
        raise ValueError(f"scatter item {item!r} out of range")
    return index - 1, count
