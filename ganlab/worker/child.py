"""One training child process: started, watched, stopped.

Each experiment runs in its own process so a crash, an out-of-memory kill or
a segfault takes down that experiment only. The child
(``python -m ganlab.worker.child_main``, or a pre-started process) reads its
job from stdin and runs the experiment through the same entry as
``ganlab train``, pinned to one GPU, with its output appended to
``train.log`` in the run directory. It gets a lifeline to the worker
(:mod:`ganlab.worker.lifeline`) so that it stops when the worker dies,
whatever it is doing at that moment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ganlab.plugin_files import pin_values
from ganlab.store.queue import Claim
from ganlab.training.report import EXIT_CODES
from ganlab.training.report_pipe import ReportReader
from ganlab.training.run_dir import RunDir
from ganlab.worker.gpu_share import TF_MEMORY_ENV
from ganlab.worker.lifeline import close_fd, new_lifeline
from ganlab.worker.spawn import start_child
from ganlab.worker.standby import Standby


@dataclass
class Child:
    """A running experiment as the worker tracks it."""

    claim: Claim
    slot: str | None
    run_dir: Path
    process: subprocess.Popen[bytes]
    reader: ReportReader
    lifeline: int  # the write end of the child's lifeline: held until the child is settled
    started: float = field(default_factory=time.monotonic)
    step: int = 0
    total: int = 0
    losses: dict[str, float] = field(default_factory=dict)
    steps_per_s: float = 0.0
    result: dict[str, Any] | None = None
    last_renew: float = field(default_factory=time.monotonic)
    lease_renewed: float = field(default_factory=time.monotonic)  # last renew the database accepted
    stop_sent: float | None = None
    cancelling: bool = False
    lease_lost: bool = False
    start_step: int | None = None  # where training (re)started, once the child says so
    training: bool = False  # past its start-up (it sent the start event)
    finishing: bool = False  # its last step is done: final evaluation, checkpoint and exit remain
    start_shown: bool = False
    # A study's trial: evaluations (step, metrics) not yet handed to the queue, and the pruner's
    # reason once it said stop (the run then ends as pruned, not back in the queue).
    evals: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    prune_reason: str | None = None
    pack: PackShare | None = None  # set for a member of a pack: the process, pipe and lifeline are shared

    @property
    def id(self) -> int:
        return self.claim.id

    @property
    def name(self) -> str:
        return self.claim.experiment.name

    @property
    def log_path(self) -> Path:
        return RunDir(self.run_dir).log_file

    def poll_reports(self) -> None:
        """Fold the child's new report lines into what the worker shows and heartbeats."""
        events = self.pack.events_for(self.id) if self.pack is not None else self.reader.read()
        for event in events:
            kind = event.get("event")
            if kind == "start":
                self.step, self.total = int(event.get("step", 0)), int(event.get("total", self.total))
                self.start_step = self.step
                self.training = True
            elif kind == "progress":
                self.step = int(event.get("step", self.step))
                self.losses = {k: float(v) for k, v in (event.get("losses") or {}).items()}
                self.steps_per_s = float(event.get("steps_per_s", 0.0))
                self.finishing = self.total > 0 and self.step >= self.total
            elif kind == "eval" and self.claim.experiment.study_id is not None:
                metrics = event.get("metrics")
                if isinstance(metrics, dict):
                    self.evals.append((int(event.get("step", self.step)), metrics))
            elif kind == "result":
                self.result = event

    def eta_s(self) -> float | None:
        if self.steps_per_s <= 0 or not self.total:
            return None
        return max(0.0, (self.total - self.step) / self.steps_per_s)

    def stop(self) -> None:
        """Ask for a clean stop: the trainer checkpoints and exits (code 4).

        A pack's process is asked once: a second SIGTERM seconds later would end it without checkpoints.
        """
        if self.stop_sent is None and self.process.poll() is None:
            self.stop_sent = time.monotonic()
            if self.pack is None or self.pack.ask_stop():
                _signal(self.process, signal.SIGTERM)

    def kill(self) -> None:
        if self.process.poll() is None:
            _signal(self.process, signal.SIGKILL)

    def finished(self) -> int | None:
        """The exit status once the run ended; None while it runs.

        A pack member whose result came ends then (say, diverged), while the
        others train on; the last one open waits for the process to exit.
        """
        code = self.process.poll()
        if code is None and self.pack is not None and self.result is not None and self.pack.others_open(self.id):
            return EXIT_CODES.get(str(self.result.get("status")), EXIT_CODES["failed"])
        return code

    def close(self) -> None:
        self.poll_reports()
        if self.pack is not None:
            self.pack.release(self.id)
        else:
            self.reader.close()
            close_fd(self.lifeline)
        self.lifeline = -1


class PackShare:
    """What the members of one pack share: one process, its report pipe (events tagged by id), its lifeline."""

    def __init__(self, reader: ReportReader, lifeline: int, ids: list[int]) -> None:
        self.reader = reader
        self.lifeline = lifeline
        self.pending: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        self.open: set[int] = set(ids)
        self.stop_asked = False

    def events_for(self, exp_id: int) -> list[dict[str, Any]]:
        for event in self.reader.read():
            target = event.get("id")
            for member in ([target] if target in self.pending else list(self.pending)):
                self.pending[member].append(event)
        events, self.pending[exp_id] = self.pending[exp_id], []
        return events

    def others_open(self, exp_id: int) -> bool:
        return bool(self.open - {exp_id})

    def ask_stop(self) -> bool:
        """True the first time: the caller signals the process."""
        first, self.stop_asked = not self.stop_asked, True
        return first

    def release(self, exp_id: int) -> None:
        """``exp_id`` is settled; the last member out closes the pipe and the lifeline."""
        self.open.discard(exp_id)
        if not self.open and self.lifeline >= 0:
            self.reader.close()
            close_fd(self.lifeline)
            self.lifeline = -1


def _signal(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # the child leads its own process group (its data loaders too)
    except (ProcessLookupError, PermissionError):
        pass


def child_env(slot: str | None, backend: str, share: dict[str, str] | None = None) -> dict[str, str]:
    """A training child's environment; ``share``: its memory share of a GPU it shares (ganlab.worker.gpu_share)."""
    env = dict(os.environ)
    # An empty CUDA_VISIBLE_DEVICES hides every GPU: the CPU slot must not grab one.
    env["CUDA_VISIBLE_DEVICES"] = slot if slot is not None else ""
    env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    if share:
        env.update(share)
        if TF_MEMORY_ENV in share:
            # TensorFlow refuses a memory limit on a device set to grow: the limit is the share.
            env.pop("TF_FORCE_GPU_ALLOW_GROWTH")
    env["KERAS_BACKEND"] = backend
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if backend == "jax":
        # JAX would otherwise reserve most of the GPU's memory up front.
        env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    return env


def job(claim: Claim, run_dir: Path, plugins_dir: str | None) -> dict[str, Any]:
    """What the child runs (see :mod:`ganlab.worker.child_main`); the pipe's number is added by who starts it.

    Only the experiment's recorded plugin files are pinned: nothing else of the
    plugins folder is loaded, and an experiment that recorded none (or was
    queued before files were recorded) loads none.
    """
    return {"id": claim.id, "config": claim.experiment.config, "run_dir": str(run_dir),
            "plugins_dir": plugins_dir, "pins": pin_values(claim.experiment.plugin_files)}


def spawn(claim: Claim, slot: str | None, run_dir: Path, *, worker_id: str, plugins_dir: str | None,
          standby: Standby | None = None, share: dict[str, str] | None = None) -> Child:
    """Start the child for a claimed experiment (resuming if the run dir has a checkpoint).

    With a ``standby`` of the experiment's backend, it runs there (framework
    already imported); otherwise, or if the standby died, in a fresh process.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    backend = str(claim.experiment.config["train"]["backend"])
    if standby is not None and (standby.backend != backend or not standby.alive()):
        standby = None
    work = job(claim, run_dir, plugins_dir)
    log_path = RunDir(run_dir).log_file
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    gpu = f"GPU {slot}" if slot is not None else "CPU"
    header = f"\n=== {stamp}: experiment {claim.id} attempt {claim.experiment.attempts}, worker {worker_id}, {gpu}"
    total = int(claim.experiment.config["train"]["steps"])
    if standby is not None:
        with open(log_path, "ab") as log:
            log.write(f"{header}, pre-started process {standby.process.pid} ===\n".encode())
        handed = standby.assign(work, log_path)
        if handed is not None:
            process, reader, lifeline = handed
            return Child(claim, slot, run_dir, process, reader, lifeline, step=claim.experiment.step, total=total)
    read_fd, write_fd = os.pipe()
    life_read, life_write = new_lifeline()
    with open(log_path, "ab") as log:
        log.write(f"{header} ===\n".encode())
        log.flush()
        process = start_child("ganlab.worker.child_main", child_env(slot, backend, share), (read_fd, write_fd),
                              (life_read, life_write), log)
    _hand_job(process, {**work, "report_fd": write_fd})
    return Child(claim, slot, run_dir, process, ReportReader(read_fd), life_write, step=claim.experiment.step,
                 total=total)


def spawn_pack(claims: list[Claim], slot: str | None, run_dirs: list[Path], *, worker_id: str,
               plugins_dir: str | None, share: dict[str, str] | None = None) -> list[Child]:
    """Start one process for a pack's claimed members (see :mod:`ganlab.training.pack_trainer`); one Child each.

    The process's own output goes to the first member's ``train.log``; each
    member's progress and result lines go to its own.
    """
    ids = [c.id for c in claims]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    gpu = f"GPU {slot}" if slot is not None else "CPU"
    members = ",".join(f"#{i}" for i in ids)
    for claim, run_dir in zip(claims, run_dirs):
        run_dir.mkdir(parents=True, exist_ok=True)
        with open(RunDir(run_dir).log_file, "ab") as log:
            log.write(f"\n=== {stamp}: experiment {claim.id} attempt {claim.experiment.attempts}, worker {worker_id}, "
                      f"{gpu}, in a pack of {len(ids)} ({members}; the process's own output is in "
                      f"{RunDir(run_dirs[0]).log_file}) ===\n".encode())
    work = {"pack": [{k: v for k, v in job(c, d, plugins_dir).items() if k != "plugins_dir"}
                     for c, d in zip(claims, run_dirs)], "plugins_dir": plugins_dir}
    read_fd, write_fd = os.pipe()
    life_read, life_write = new_lifeline()
    with open(RunDir(run_dirs[0]).log_file, "ab") as log:
        process = start_child("ganlab.worker.child_main", child_env(slot, "jax", share), (read_fd, write_fd),
                              (life_read, life_write), log)
    _hand_job(process, {**work, "report_fd": write_fd})
    share = PackShare(ReportReader(read_fd), life_write, ids)
    return [Child(c, slot, d, process, share.reader, life_write, step=c.experiment.step,
                  total=int(c.experiment.config["train"]["steps"]), pack=share) for c, d in zip(claims, run_dirs)]


def _hand_job(process: subprocess.Popen[bytes], work: dict[str, Any]) -> None:
    """Write the job line; a child already gone is settled by its exit status like any other."""
    assert process.stdin is not None
    try:
        process.stdin.write((json.dumps(work) + "\n").encode())
        process.stdin.close()
    except (BrokenPipeError, OSError):
        pass
