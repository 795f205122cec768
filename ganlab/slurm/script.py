"""The batch script ``ganlab slurm submit`` hands to sbatch: one job array, one worker per task.

Written out in full rather than through submitit: submitit pickles a Python
callable and keeps its own folder of pickles and results, while a worker is a
plain command. A plain script is readable, ``--dry-run`` prints exactly what
is submitted, and it needs no extra package on the cluster.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ganlab import __version__
from ganlab.errors import ConfigError

DEFAULT_JOB_NAME = "ganlab-worker"
DEFAULT_WARN_S = 120

# What SLURM's --time accepts: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS.
_TIME = re.compile(r"^(?:\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d{1,2}(?::\d{1,2}(?::\d{1,2})?)?)$")
_KEY = re.compile(r"^[a-z][a-z0-9-]*$")
_JOB_NAME = re.compile(r"^[A-Za-z0-9_.+-]{1,64}$")
# Lines the array depends on: another value would break requeueing or the warning signal.
_OWN_KEYS = {
    "array": "the array size comes from --workers",
    "signal": "the warning signal comes from --warn",
    "requeue": "the script always asks for --requeue",
    "no-requeue": "workers must be requeueable",
    "open-mode": "a requeued task appends to its log",
    "output": "the logs go to RUNS/slurm",
    "error": "the logs go to RUNS/slurm",
    "job-name": "use --name",
    "time": "use --time",
    "t": "use --time",
    "partition": "use --partition",
    "p": "use --partition",
    "account": "use --account",
    "a": "use --account",
    "cpus-per-task": "use --cpus-per-worker",
    "c": "use --cpus-per-worker",
    "gres": "use --gpus-per-worker",
    "gpus": "use --gpus-per-worker",
}


def time_to_s(value: str) -> int:
    """Seconds in a SLURM time limit (``MM``, ``HH:MM:SS``, ``D-HH:MM`` ...); ConfigError when malformed."""
    text = value.strip()
    if not _TIME.match(text):
        raise ConfigError(
            f"--time {value!r} is not a SLURM time limit; give MINUTES, HH:MM:SS or DAYS-HH:MM:SS (e.g. 24:00:00)"
        )
    days = 0
    if "-" in text:
        head, text = text.split("-", 1)
        days = int(head)
        parts = [int(p) for p in text.split(":")] + [0] * (3 - len(text.split(":")))
        hours, minutes, seconds = parts
    else:
        parts = [int(p) for p in text.split(":")]
        if len(parts) == 1:
            hours, minutes, seconds = 0, parts[0], 0
        elif len(parts) == 2:
            hours, (minutes, seconds) = 0, parts
        else:
            hours, minutes, seconds = parts
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def parse_sbatch_pairs(pairs: tuple[str, ...]) -> list[tuple[str, str]]:
    """``KEY=VALUE`` strings from ``--sbatch`` as sbatch options; ConfigError for a malformed or reserved one."""
    out: list[tuple[str, str]] = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().lstrip("-")
        if not _KEY.match(key):
            raise ConfigError(f"--sbatch {pair!r} is not KEY=VALUE with an sbatch option as KEY (e.g. --sbatch mem=16G)")
        if any(ord(c) < 32 for c in value):
            raise ConfigError(f"--sbatch {key}: the value holds a newline or control character; give it on one line")
        if key in _OWN_KEYS:
            raise ConfigError(f"--sbatch {key} cannot be set here: {_OWN_KEYS[key]}")
        out.append((key, value.strip()) if sep else (key, ""))
    return out


@dataclass(frozen=True)
class SubmitOptions:
    """What ``ganlab slurm submit`` was asked for; :func:`render` turns it into the batch script."""

    db_url: str
    runs_dir: Path
    workers: int
    time: str
    gpus_per_worker: int = 0
    cpus_per_worker: int = 1
    partition: str | None = None
    account: str | None = None
    job_name: str = DEFAULT_JOB_NAME
    warn_s: int = DEFAULT_WARN_S
    extra: list[tuple[str, str]] = field(default_factory=list)
    # Passed on to every `ganlab worker`.
    plugins_dir: str | None = None
    no_local_plugins: bool = False
    lease_s: float = 60.0
    poll_s: float = 5.0
    tags: tuple[str, ...] = ()
    max_attempts: int | None = None
    prestart: bool = True
    until_empty: bool = True
    python: str = field(default_factory=lambda: sys.executable)

    def check(self) -> None:
        """ConfigError for values sbatch would refuse or that defeat the warning signal."""
        if self.workers < 1:
            raise ConfigError(f"--workers {self.workers}: give at least 1 worker")
        if not _JOB_NAME.match(self.job_name):
            raise ConfigError(f"--name {self.job_name!r}: use 1-64 letters, digits, '.', '_', '+' or '-'")
        limit = time_to_s(self.time)
        if limit < 60:
            raise ConfigError(f"--time {self.time}: SLURM counts time limits in whole minutes; give at least 1 minute")
        if self.warn_s >= limit:
            raise ConfigError(f"--warn {self.warn_s} s is not shorter than --time {self.time} ({limit} s); "
                              "the workers would be warned as they start: give a longer --time or a shorter --warn")
        for name, value in (("--partition", self.partition), ("--account", self.account)):
            if value is not None and not re.match(r"^[A-Za-z0-9_.,+-]+$", value):
                raise ConfigError(f"{name} {value!r} is not a SLURM {name[2:]} name")


def worker_command(options: SubmitOptions) -> list[str]:
    """The ``ganlab worker`` command every task runs (``exec``'d, so it receives SLURM's signals itself)."""
    cmd = [options.python, "-m", "ganlab"]
    if options.no_local_plugins:
        cmd.append("--no-local-plugins")
    elif options.plugins_dir is not None:
        cmd += ["--plugins-dir", options.plugins_dir]
    cmd += ["worker", "--db", options.db_url, "--runs-dir", str(options.runs_dir),
            "--gpus", "auto" if options.gpus_per_worker else "none", "--lease", f"{options.lease_s:g}",
            "--poll", f"{options.poll_s:g}"]
    if not options.prestart:
        cmd.append("--no-prestart")
    if options.until_empty:
        cmd.append("--until-empty")
    for tag in options.tags:
        cmd += ["--tag", tag]
    if options.max_attempts is not None:
        cmd += ["--max-attempts", str(options.max_attempts)]
    return cmd


def log_dir(options: SubmitOptions) -> Path:
    return options.runs_dir / "slurm"


def render(options: SubmitOptions) -> str:
    """The batch script, exactly as submitted."""
    options.check()
    lines = [
        "#!/bin/bash",
        f"# Written by ganlab {__version__} (ganlab slurm submit): {options.workers} worker(s) on one shared queue.",
        f"#SBATCH --job-name={options.job_name}",
        f"#SBATCH --array=0-{options.workers - 1}",
        f"#SBATCH --time={options.time.strip()}",
        f"#SBATCH --cpus-per-task={options.cpus_per_worker}",
    ]
    if options.gpus_per_worker:
        lines.append(f"#SBATCH --gres=gpu:{options.gpus_per_worker}")
    if options.partition:
        lines.append(f"#SBATCH --partition={options.partition}")
    if options.account:
        lines.append(f"#SBATCH --account={options.account}")
    logs = log_dir(options)
    lines += [
        # B: the signal goes to the batch shell only, which is the worker itself (exec below);
        # the worker checkpoints its experiments, hands them back to the queue and requeues its task.
        f"#SBATCH --signal=B:USR1@{options.warn_s}",
        "#SBATCH --requeue",
        "#SBATCH --open-mode=append",
        f"#SBATCH --output={logs}/%A_%a.out",
    ]
    lines += [f"#SBATCH --{k}={shlex.quote(v)}" if v else f"#SBATCH --{k}" for k, v in options.extra]
    lines += [
        "",
        "set -eu",
        'echo "ganlab worker: SLURM job ${SLURM_ARRAY_JOB_ID:-$SLURM_JOB_ID} task ${SLURM_ARRAY_TASK_ID:-0}'
        ' on $(hostname), restart count ${SLURM_RESTART_COUNT:-0}"',
        "exec " + shlex.join(worker_command(options)),
        "",
    ]
    return "\n".join(lines)
