"""What every Snakemake script needs first: its log file, a guard against a second writer, and its shard."""

from __future__ import annotations

import fcntl
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

# How often a job checks that its scheduler is alive, and how often a job waiting for an earlier run says so.
SCHEDULER_POLL_SECONDS = 1.0
LOCK_REPORT_SECONDS = 60.0

_held_locks: list = []  # the open lock files of this process: closing one would release its lock


def setup_logging(log_path: str | None) -> None:
    """Send logging, warnings and stderr of this job to its Snakemake log file; guard the job against two writers.

    Two runs of one job can overlap when the scheduler dies and is restarted: its local jobs keep running (they are
    its children, not its threads) and on SLURM they run on other nodes. So a job (1) stops when the local
    `snakemake` that started it dies, and (2) holds an exclusive lock on `<log>.lock` for its whole life (the log
    is one per job: Snakemake names it from the output's wildcards); a second run waits for the first to end and
    then resumes from its parts or checkpoints. The kernel releases the lock of a process that dies, however.
    """
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        stream = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the job
        sys.stderr = stream
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    # where the job ran and on which devices (the SLURM tests check that GPU rules, and only they, were given GPUs)
    logging.info("job environment: host=%s pid=%d SLURM_JOB_ID=%s CUDA_VISIBLE_DEVICES=%s", socket.gethostname(),
                 os.getpid(), os.environ.get("SLURM_JOB_ID", ""), os.environ.get("CUDA_VISIBLE_DEVICES", ""))
    if log_path:
        hold_job_lock(Path(log_path).with_name(Path(log_path).name + ".lock"))
    stop_with_scheduler()


def hold_job_lock(lock_path: str | os.PathLike) -> None:
    """Take the exclusive lock of this job for the life of the process, waiting while another run holds it.

    `flock` locks are released by the kernel when their holder dies (on NFS, by the server's lock manager), so a
    lock left by a killed job never blocks. The file names its holder, for the waiting job's log.
    """
    lock_path = Path(lock_path)
    handle = open(lock_path, "a+")  # noqa: SIM115 - held until the process exits
    waited_since = time.monotonic()
    reported = None
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if reported is None or time.monotonic() - reported >= LOCK_REPORT_SECONDS:
                handle.seek(0)
                holder = handle.read().strip() or "unknown process"
                log.warning("another run of this job is still writing its output (%s holds %s): waiting for it "
                            "to end, then resuming from what it wrote", holder, lock_path)
                reported = time.monotonic()
            time.sleep(0.5)
    if reported is not None:
        log.info("lock %s acquired after %.0f s", lock_path, time.monotonic() - waited_since)
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n")
    handle.flush()
    _held_locks.append(handle)


def stop_with_scheduler() -> None:
    """Terminate this job if the `snakemake` process that started it on this machine dies.

    A SIGKILLed scheduler cannot stop its children, and prctl(PR_SET_PDEATHSIG) only follows the direct parent
    (and fires when the parent's forking *thread* ends), so a daemon thread polls the nearest `snakemake` ancestor.
    On a SLURM node the nearest one is the job step's own `snakemake`, which outlives the main scheduler: there the
    job lock is the guard; so it is for a job orphaned while it started (before this call), and inside a container
    with its own process namespace, where no ancestor is visible (an orphan cannot be told from such a job).
    """
    scheduler = scheduler_process()
    if scheduler is None:
        return
    threading.Thread(target=_watch_scheduler, args=scheduler, name="scheduler-watchdog", daemon=True).start()


def scheduler_process(pid: int | None = None) -> tuple[int, str] | None:
    """(pid, start time) of the nearest ancestor of `pid` (default: this process) that runs snakemake, or None."""
    current = os.getppid() if pid is None else _parent(pid)
    while current and current > 1:
        if _is_snakemake(_cmdline(current)):
            start = _start_time(current)
            return (current, start) if start else None
        current = _parent(current)
    return None


def _watch_scheduler(pid: int, start_time: str) -> None:
    while _start_time(pid) == start_time and not _is_zombie(pid):
        time.sleep(SCHEDULER_POLL_SECONDS)
    _stop_job(f"the scheduler (snakemake, pid {pid}) died")


def _stop_job(reason: str) -> None:
    """Terminate this job and its children (SIGTERM, then SIGKILL), saying why in its log."""
    log.error("%s: stopping this job so that a restarted scheduler does not run a second writer of its output; "
              "the restart resumes from what this job wrote", reason)
    for handler in logging.getLogger().handlers:
        handler.flush()
    # the job's own children first (a multi-GPU training's `accelerate launch` and its ranks): orphaned, they write on
    for child in _descendants(os.getpid()):
        _signal(child, signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)  # a SIGTERM handler (a library's) that does not exit
    os.kill(os.getpid(), signal.SIGKILL)


def _descendants(pid: int) -> list[int]:
    """Every live process below `pid`, children before grandchildren."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            children.setdefault(_parent(int(entry.name)), []).append(int(entry.name))
    found, frontier = [], [pid]
    while frontier:
        frontier = [child for parent in frontier for child in children.get(parent, [])]
        found.extend(frontier)
    return found


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass  # ended meanwhile


def _is_snakemake(argv: list[str]) -> bool:
    """`snakemake ...`, `python .../bin/snakemake ...` or `python -m snakemake ...` (not a script under .snakemake/)."""
    for index, arg in enumerate(argv[:3]):
        if os.path.basename(arg) == "snakemake" or (arg == "-m" and argv[index + 1:index + 2] == ["snakemake"]):
            return True
    return False


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()  # the command name before it may hold spaces and parentheses


def _parent(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else 0


def _start_time(pid: int) -> str:
    """Start time in clock ticks since boot: tells a live scheduler from a new process that reused its pid."""
    fields = _stat_fields(pid)
    return fields[19] if fields else ""


def _is_zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is None or fields[0] in ("Z", "X")


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def parse_scatteritem(item: str) -> tuple[int, int]:
    """'3-of-8' (Snakemake's scatter naming, 1-based) -> (2, 8)."""
    match = re.fullmatch(r"(\d+)-of-(\d+)", item)
    if not match:
        raise ValueError(f"not a scatter item: {item!r} (expected like '1-of-8')")
    index, count = int(match[1]), int(match[2])
    if not 1 <= index <= count:
        raise ValueError(f"scatter item {item!r} out of range")
    return index - 1, count
