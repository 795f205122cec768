"""SLURM's own commands (sbatch, squeue, scancel), run as subprocesses, their answers parsed.

Every failure becomes a :class:`SlurmError` with one line: sbatch's own
message when it refuses a job (an unknown partition, an account it does not
know), or what to install when the commands are missing.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from ganlab.errors import GanlabError

TIMEOUT_S = 60.0


class SlurmError(GanlabError):
    """A SLURM command is missing or refused what it was asked."""


def _run(args: Sequence[str], *, stdin: str | None = None) -> str:
    tool = shutil.which(args[0])
    if tool is None:
        raise SlurmError(f"{args[0]} is not on PATH: run this on a SLURM login node (or install slurm-client)")
    try:
        done = subprocess.run([tool, *args[1:]], input=stdin, capture_output=True, text=True,
                              timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{args[0]} did not answer within {TIMEOUT_S:g} s; is slurmctld reachable (scontrol ping)?") from None
    except OSError as exc:
        raise SlurmError(f"could not run {args[0]}: {exc}") from None
    if done.returncode != 0:
        raise SlurmError(f"{args[0]} refused: {_reason(done.stderr or done.stdout, done.returncode)}")
    return done.stdout


def _reason(text: str, code: int) -> str:
    """The line of a SLURM command's error output that says why: its last ``error:`` line, minus the prefix."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    line = (errors or lines or [f"exit status {code}"])[-1]
    head, sep, tail = line.partition("error:")
    return tail.strip() if sep else line


def parse_job_id(output: str) -> str:
    """The job id in ``sbatch --parsable`` output (``JOBID`` or ``JOBID;CLUSTER``)."""
    first = output.strip().splitlines()[0] if output.strip() else ""
    job = first.split(";", 1)[0].strip()
    if not job.isdigit():
        raise SlurmError(f"sbatch answered {first!r}, not a job id; check squeue before submitting again")
    return job


def submit(script: str) -> str:
    """Hand ``script`` to sbatch (on stdin); returns the array's job id."""
    return parse_job_id(_run(["sbatch", "--parsable"], stdin=script))


@dataclass(frozen=True)
class Task:
    """One array task as squeue shows it."""

    job_id: str  # the array's id
    task: int | None
    state: str
    elapsed: str
    limit: str
    where: str  # the node it runs on, or why it is pending
    restarts: int = 0

    @property
    def name(self) -> str:
        return self.job_id if self.task is None else f"{self.job_id}_{self.task}"


_SQUEUE_FORMAT = "%F|%K|%T|%M|%l|%R"


def parse_squeue(output: str) -> list[Task]:
    """Rows of ``squeue -h -r -o '%F|%K|%T|%M|%l|%R'`` (one per array task)."""
    tasks = []
    for line in output.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 6 or not fields[0].isdigit():
            continue
        job, task, state, elapsed, limit, where = fields
        tasks.append(Task(job, int(task) if task.isdigit() else None, state, elapsed, limit, where))
    return sorted(tasks, key=lambda t: (int(t.job_id), t.task if t.task is not None else -1))


def list_tasks(*, job_id: str | None = None, name: str | None = None) -> list[Task]:
    """This user's tasks of array ``job_id``, or of every array named ``name``, still known to squeue."""
    args = ["squeue", "-h", "-r", "-o", _SQUEUE_FORMAT, "-u", getpass.getuser()]
    if job_id is not None:
        args += ["-j", job_id]
    if name is not None:
        args += ["--name", name]
    try:
        return parse_squeue(_run(args))
    except SlurmError as exc:
        if job_id is not None and "Invalid job id" in str(exc):
            return []  # ended and forgotten by slurmctld
        raise


def cancel_pending(job_id: str) -> None:
    """Remove the array's tasks that have not started (they would start new workers)."""
    _run(["scancel", "--state=PENDING", job_id])


def signal_running(job_id: str, signal: str = "TERM") -> None:
    """Send ``signal`` to the worker (the batch shell) of every running task of the array."""
    _run(["scancel", "--state=RUNNING", "--batch", f"--signal={signal}", job_id])
