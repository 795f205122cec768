"""What a worker reads from the environment SLURM gives its job, and the one call it makes back."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class SlurmTask:
    """The job a worker runs as: ``job_id`` is the array's id (the job's own outside an array)."""

    job_id: str
    task: int | None
    own_job_id: str  # SLURM_JOB_ID: this task's own id, the one ``scontrol requeue`` takes


def slurm_task(environ: Mapping[str, str] | None = None) -> SlurmTask | None:
    """The SLURM job this process runs in, or None outside SLURM (or in an interactive allocation's shell)."""
    env = os.environ if environ is None else environ
    own = env.get("SLURM_JOB_ID", "").strip()
    if not own.isdigit():
        return None
    array = env.get("SLURM_ARRAY_JOB_ID", "").strip()
    task = env.get("SLURM_ARRAY_TASK_ID", "").strip()
    if array.isdigit() and task.isdigit():
        return SlurmTask(array, int(task), own)
    return SlurmTask(own, None, own)


def requeue(task: SlurmTask, timeout_s: float = 30.0) -> str | None:
    """Ask SLURM to requeue this task (it is ended, then started again later); returns why not, or None.

    Called by a worker that has released its experiments on a warning signal:
    the task comes back, with a fresh worker, instead of ending for good.
    """
    scontrol = shutil.which("scontrol")
    if scontrol is None:
        return "scontrol is not on PATH"
    try:
        done = subprocess.run([scontrol, "requeue", task.own_job_id], capture_output=True, text=True,
                              timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"scontrol requeue {task.own_job_id} failed: {exc}"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return f"scontrol requeue {task.own_job_id}: {lines[-1] if lines else f'exit {done.returncode}'}"
    return None
