"""The worker: claim queued experiments, run each in a child process, keep the queue true.

One loop, no threads. Every pass it reclaims expired leases, fills free
slots (one per GPU, or one CPU slot), reads the children's progress, renews
their leases (checking the fencing token), and settles children that ended.
The database row is only ever written by the worker holding the current
token, so a worker that was presumed dead cannot overwrite anything.
"""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from ganlab.errors import ConfigError, DatabaseUnreachable, LeaseLost, StoreError
from ganlab.slurm.env import SlurmTask, requeue, slurm_task
from ganlab.store.queue import DEFAULT_MAX_ATTEMPTS, Claim, Queue
from ganlab.store.urls import db_hint
from ganlab.training.run_dir import queued_run_dir
from ganlab.worker.child import Child, child_env, spawn, spawn_pack
from ganlab.worker.display import WorkerDisplay
from ganlab.worker.gpu_share import admit_another, gpu_memory, share_env
from ganlab.worker.outcome import classify, tail
from ganlab.worker.standby import Standby, start_standby
from ganlab.worker.tb_note import note_pruned

#: A child asked to stop gets this long to checkpoint before it is killed.
STOP_GRACE_S = 60.0


@dataclass
class WorkerOptions:
    slots: list[str | None] = field(default_factory=lambda: [None])
    runs_root: Path = Path("runs")
    lease_s: float = 60.0
    poll_s: float = 5.0
    tags: tuple[str, ...] = ()
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_experiments: int | None = None
    until_empty: bool = False
    # The absolute plugins folder whose files children may load (only those an experiment recorded,
    # verified against their hashes); None: children run no local plugin file.
    plugins_dir: str | None = None
    # Pre-start each slot's next process (see ganlab.worker.standby) and hand it the next
    # experiment as soon as the current one's last step is done, while that one finishes up.
    prestart: bool = True
    # Experiments at once per GPU, each its own process with a memory share (ganlab.worker.gpu_share);
    # None: "auto", admitted while the GPU's measured memory leaves room for one more.
    per_gpu: int | None = 1


class Worker:
    """Runs queued experiments until told to stop (or the queue is empty, with ``until_empty``)."""

    def __init__(self, queue: Queue, options: WorkerOptions, display: WorkerDisplay | None = None) -> None:
        self.queue = queue
        self.options = options
        self.display = display or WorkerDisplay(quiet=True)
        self.host = socket.gethostname()
        self.worker_id = f"{self.host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.children: dict[int, Child] = {}
        self.started = 0
        self.finished: list[tuple[int, str]] = []
        self._stop_requests = 0
        self._next_reclaim = 0.0
        self._next_beat = 0.0
        self._offline_since: float | None = None
        self._unsettled: list[Child] = []  # ended while the database was unreachable
        self.standbys: dict[str | None, Standby] = {}
        self.slurm: SlurmTask | None = slurm_task()
        self._requeue_task = False  # SIGUSR1: SLURM's warning before a time limit or preemption

    # ------------------------------------------------------------------ signals

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self._stop_requests and (signum == signal.SIGUSR1 or (self.slurm is not None and signum == signal.SIGTERM)):
            # Already stopping: SLURM's warning or its own SIGTERM (time limit, requeue, preemption) must not
            # turn a clean stop into a kill; SLURM sends SIGKILL itself when its grace time is over.
            self.display.event(f"{name}: already checkpointing and stopping")
            return
        self._stop_requests += 1
        if signum == signal.SIGUSR1 and self.slurm is not None:
            self._requeue_task = True
        if self._stop_requests == 1:
            self.display.event(f"{name}: checkpointing {len(self.children)} running experiment(s) and stopping "
                               "(again to stop at once)")
            for child in self.children.values():
                child.stop()
        else:
            self.display.event(f"{name} again: killing children now; their experiments go back to the queue")
            for child in self.children.values():
                child.kill()

    # --------------------------------------------------------------------- loop

    def run(self) -> int:
        """Work until done; returns the process exit code (0 on a clean stop)."""
        gpus = ",".join(s for s in self.options.slots if s is not None) or "cpu"
        self.queue.register_worker(self.worker_id, host=self.host, pid=os.getpid(), gpus=gpus,
                                   slurm_job_id=self.slurm.job_id if self.slurm else None,
                                   slurm_task=self.slurm.task if self.slurm else None)
        # SIGUSR1 is what `#SBATCH --signal=B:USR1@S` sends before a time limit: stop like SIGTERM, then requeue.
        stops = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
        previous = {s: signal.signal(s, self._on_signal) for s in stops}
        try:
            while True:
                try:
                    self._settle_pending()
                    self._reclaim()
                    if not self._stop_requests:
                        self._fill_slots()
                    freed = self._watch_children()
                    self._worker_heartbeat()
                    self._back_online()
                    if self._should_exit():
                        break
                    if freed and not self._stop_requests:
                        continue  # a slot just freed up: fill it without waiting a poll
                except DatabaseUnreachable as exc:
                    self._went_offline(exc)
                    self._watch_children()  # children keep training; their reports still arrive
                    if self._stop_requests > 1 and not self.children:
                        break
                time.sleep(0.2 if self.children or self._offline_since else min(self.options.poll_s, 1.0))
        finally:
            for s, old in previous.items():
                signal.signal(s, old)
            for child in list(self.children.values()):  # only on an unexpected error: leave nothing behind
                child.kill()
                child.process.wait()
                child.close()
                try:
                    self._settle(child)
                except StoreError:
                    pass  # its lease will lapse and another worker resumes it
            for standby in self.standbys.values():
                standby.discard()
            self.standbys.clear()
            self.display.close()
            try:
                self.queue.worker_stopped(self.worker_id)
            except StoreError:
                pass
            if self._requeue_task and self.slurm is not None:
                self._requeue_self(self.slurm)
        return 0

    def _requeue_self(self, task: SlurmTask) -> None:
        # Last: SLURM ends the task at once (SIGTERM), after every experiment went back to the queue.
        where = task.own_job_id if task.task is None else f"{task.job_id}_{task.task}"
        print(f"requeueing SLURM task {where}: a fresh worker takes up the queue when it starts again", flush=True)
        problem = requeue(task)
        if problem is not None:
            print(f"could not requeue SLURM task {where} ({problem}); it ends here", flush=True)

    def _went_offline(self, exc: DatabaseUnreachable) -> None:
        if self._offline_since is None:
            self._offline_since = time.monotonic()
            self.display.event(f"database unreachable ({exc}); retrying. Running experiments go on until their "
                               f"leases would expire ({self.options.lease_s:g} s), then checkpoint and stop")

    def _back_online(self) -> None:
        if self._offline_since is not None:
            self.display.event(f"database reachable again after {time.monotonic() - self._offline_since:.0f} s")
            self._offline_since = None

    def _settle_pending(self) -> None:
        while self._unsettled:
            self._settle(self._unsettled[0])  # raises DatabaseUnreachable while still offline
            self._unsettled.pop(0)

    def _should_exit(self) -> bool:
        if self.children or self._unsettled:
            return False
        if self._stop_requests:
            return True
        if self.options.max_experiments is not None and self.started >= self.options.max_experiments:
            return True
        if self.options.until_empty:
            # Someone else's running experiment may still come back to the queue if its worker dies.
            if self.options.tags:
                return not self.queue.list_experiments(statuses=["queued", "running"], tags=list(self.options.tags))
            counts = self.queue.count_by_status()
            return counts.get("queued", 0) == 0 and counts.get("running", 0) == 0
        return False

    def _reclaim(self) -> None:
        now = time.monotonic()
        if now < self._next_reclaim:
            return
        self._next_reclaim = now + self.options.poll_s
        for r in self.queue.reclaim_expired(max_attempts=self.options.max_attempts):
            self.display.event(f"#{r.id} reclaimed: {r.reason} -> {r.status}")

    def _worker_heartbeat(self) -> None:
        now = time.monotonic()
        if now >= self._next_beat:
            self._next_beat = now + self.options.lease_s / 3
            self.queue.worker_heartbeat(self.worker_id)

    def _fill_slots(self) -> None:
        for slot in self.options.slots:
            while self._room(slot):
                if self.options.max_experiments is not None and self.started >= self.options.max_experiments:
                    return
                claims = self.queue.claim_pack(self.worker_id, host=self.host, pid=os.getpid(),
                                               lease_s=self.options.lease_s, tags=list(self.options.tags) or None)
                if not claims:
                    return
                if len(claims) == 1:
                    self._start(claims[0], slot)
                else:
                    self._start_pack(claims, slot)

    def _room(self, slot: str | None) -> bool:
        """Whether ``slot`` takes one more experiment now (see --per-gpu)."""
        # A child past its last step only evaluates, checkpoints and exits: with prestart, the
        # next experiment starts up meanwhile, so the accelerator is not left waiting for both.
        # A pack's members share one process: it counts once.
        running = list({id(c.process): c for c in self.children.values()
                        if c.slot == slot and not (self.options.prestart and c.finishing)}.values())
        per_gpu = self.options.per_gpu
        if slot is None or per_gpu == 1:
            return not running
        if per_gpu is not None:
            return len(running) < per_gpu
        memory = gpu_memory(slot)
        used, total = memory if memory is not None else (None, None)
        return admit_another(len(running), sum(c.training for c in running), used, total)

    def _share(self, slot: str | None, backend: str) -> dict[str, str]:
        if slot is None or self.options.per_gpu in (None, 1):
            return {}
        memory = gpu_memory(slot) if backend != "jax" else None
        return share_env(self.options.per_gpu, backend, memory[1] if memory is not None else None)

    def _start(self, claim: Claim, slot: str | None) -> None:
        exp = claim.experiment
        try:
            run_dir = self._run_dir(claim)
        except ConfigError as exc:
            # Nothing was written: the experiment fails here, visibly, instead of writing outside the runs folder.
            self.queue.finish(claim.id, claim.token, "failed", error=str(exc))
            self.finished.append((claim.id, "failed"))
            self.display.event(f"#{claim.id} {exp.name}: failed: {exc}")
            return
        self.queue.set_run_dir(claim.id, claim.token, str(run_dir), host=self.host)
        standby = self.standbys.pop(slot, None)
        child = spawn(claim, slot, run_dir, worker_id=self.worker_id, plugins_dir=self.options.plugins_dir,
                      standby=standby, share=self._share(slot, str(exp.config["train"]["backend"])))
        if standby is not None and child.process is not standby.process:
            standby.discard()  # another backend, or it died
        self.children[claim.id] = child
        self.started += 1
        where = f"GPU {slot}" if slot is not None else "CPU"
        self.display.event(f"#{claim.id} {exp.name}: started on {where} (attempt {exp.attempts}) -> {run_dir}")

    def _start_pack(self, claims: list[Claim], slot: str | None) -> None:
        """A pack's claimed members in one child process; a member whose run dir is refused fails alone."""
        kept: list[tuple[Claim, Path]] = []
        for claim in claims:
            try:
                kept.append((claim, self._run_dir(claim)))
            except ConfigError as exc:
                self.queue.finish(claim.id, claim.token, "failed", error=str(exc))
                self.finished.append((claim.id, "failed"))
                self.display.event(f"#{claim.id} {claim.experiment.name}: failed: {exc}")
        if len(kept) == 1:
            self._start(kept[0][0], slot)
            return
        if not kept:
            return
        for claim, run_dir in kept:
            self.queue.set_run_dir(claim.id, claim.token, str(run_dir), host=self.host)
        standby = self.standbys.pop(slot, None)
        if standby is not None:
            standby.discard()  # pre-started for one experiment; a pack starts its own process
        children = spawn_pack([c for c, _ in kept], slot, [d for _, d in kept], worker_id=self.worker_id,
                              plugins_dir=self.options.plugins_dir, share=self._share(slot, "jax"))
        for child in children:
            self.children[child.id] = child
        self.started += len(children)
        where = f"GPU {slot}" if slot is not None else "CPU"
        ids = ", ".join(f"#{c.id}" for c in children)
        self.display.event(f"pack of {len(children)} ({ids}): started on {where} in one process")

    def _run_dir(self, claim: Claim) -> Path:
        """Where this experiment's files go: always a directory of its own inside the runs folder
        (see :func:`ganlab.training.run_dir.queued_run_dir`). ConfigError if a link would lead outside."""
        exp = claim.experiment
        path, note = queued_run_dir(self.options.runs_root, exp.id, exp.name, exp.run_dir)
        if note:
            self.display.event(f"#{claim.id}: {note}")
        return path

    def _watch_children(self) -> int:
        """Read reports, renew leases, settle the children that ended; returns how many ended."""
        now = time.monotonic()
        ended = 0
        for child in list(self.children.values()):
            child.poll_reports()
            if child.start_step and not child.start_shown:
                child.start_shown = True
                self.display.event(f"#{child.id} {child.name}: resumed from its checkpoint at step {child.start_step}")
            if child.evals:
                self._report_evals(child)
            if child.finished() is None:
                # Not while the slot's next experiment is starting up beside a finishing one.
                if child.training and not (child.finishing and self._successor_started(child)):
                    self._prepare_standby(child)
                if now - child.last_renew >= self.options.lease_s / 3:
                    self._renew(child)
                if child.stop_sent is not None and now - child.stop_sent > STOP_GRACE_S:
                    child.kill()
                continue
            child.close()
            del self.children[child.id]
            ended += 1
            try:
                self._settle(child)
            except DatabaseUnreachable as exc:
                self._unsettled.append(child)
                self._went_offline(exc)
        self.display.update(self.children.values())
        return ended

    def _report_evals(self, child: Child) -> None:
        """Hand a trial's evaluations to its study (the pruner decides there); stop the child if pruned."""
        while child.evals and not child.lease_lost:
            step, metrics = child.evals[0]
            try:
                decision = self.queue.report_objective(child.id, child.claim.token, step, metrics)
            except DatabaseUnreachable as exc:
                self._went_offline(exc)
                return  # kept, and handed over once the database answers
            except LeaseLost as exc:
                child.lease_lost = True
                self.display.event(f"#{child.id} lease lost ({exc}); stopping its child")
                child.kill()
                return
            child.evals.pop(0)
            if decision.prune and child.prune_reason is None:
                child.prune_reason = decision.reason
                self.display.event(f"#{child.id} {child.name}: {decision.reason}; stopping it")
                child.stop()

    def _successor_started(self, child: Child) -> bool:
        return any(other.slot == child.slot and other is not child for other in self.children.values())

    def _prepare_standby(self, child: Child) -> None:
        """Start the slot's next process once its current one trains (so the two never start up together)."""
        if not self.options.prestart or self._stop_requests or child.slot in self.standbys:
            return
        if self.options.max_experiments is not None and self.started >= self.options.max_experiments:
            return
        backend = str(child.claim.experiment.config["train"]["backend"])
        share = self._share(child.slot, backend)
        self.standbys[child.slot] = start_standby(child.slot, backend, child_env(child.slot, backend, share))

    def _renew(self, child: Child) -> None:
        now = time.monotonic()
        child.last_renew = now
        try:
            beat = self.queue.renew(child.id, child.claim.token, step=child.step, losses=child.losses or None,
                                    lease_s=self.options.lease_s)
        except DatabaseUnreachable as exc:
            self._went_offline(exc)
            if now - child.lease_renewed >= self.options.lease_s and child.stop_sent is None:
                # Our lease has lapsed: another worker may take the experiment over, so stop (checkpointing).
                self.display.event(f"#{child.id} lease expired while the database was unreachable; stopping its child")
                child.stop()
            return
        except LeaseLost as exc:
            # Another worker owns it now: ours must not write a single byte more.
            child.lease_lost = True
            self.display.event(f"#{child.id} lease lost ({exc}); stopping its child")
            child.kill()
            return
        child.lease_renewed = now
        if beat.cancel_requested and not child.cancelling:
            child.cancelling = True
            self.display.event(f"#{child.id} cancel requested; stopping it")
            child.stop()

    def _settle(self, child: Child) -> None:
        """Write how the child ended, if this worker still owns the experiment."""
        if child.lease_lost:
            return
        if child.evals:  # the last evaluations, read when the child's pipe was drained
            self._report_evals(child)
            if child.lease_lost:
                return
        code = child.process.returncode
        outcome = classify(code, child.result, tail(child.log_path),
                           retry_command=f"ganlab queue{db_hint(self.queue.url)} retry {child.id} --rehash-plugins")
        exp_id, token = child.id, child.claim.token
        try:
            if child.prune_reason is not None and (outcome.status == "released" or outcome.retryable):
                # Stopped by its pruner (checkpointed), or killed on the way: the decision stands.
                self.queue.finish(exp_id, token, "pruned", metrics=outcome.metrics, step=child.step,
                                  losses=child.losses, stop_reason=child.prune_reason)
                status = "pruned"
            elif child.cancelling:
                self.queue.finish(exp_id, token, "cancelled", metrics=outcome.metrics, step=child.step,
                                  error="cancelled by request", losses=child.losses)
                status = "cancelled"
            elif outcome.status == "released" or (self._stop_requests and outcome.retryable):
                # "cancelled" if one was requested; a child that never reported keeps the stored step.
                status = self.queue.release(exp_id, token, step=child.step or None)
            elif outcome.status == "failed" and outcome.retryable:
                status = self.queue.requeue(exp_id, token, reason=outcome.reason, detail=tail(child.log_path),
                                            max_attempts=self.options.max_attempts)
            else:
                self.queue.finish(exp_id, token, outcome.status, metrics=outcome.metrics, step=child.step,
                                  error=outcome.error, losses=child.losses, stop_reason=outcome.stop_reason)
                status = outcome.status
        except LeaseLost as exc:
            self.display.event(f"#{exp_id} result discarded: {exc}")
            return
        self.finished.append((exp_id, status))
        metrics = outcome.metrics or {}
        shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k in ("fd", "kid", "best_fd"))
        if status == "pruned":
            self.display.event(f"#{exp_id} {child.name}: pruned at step {child.step}")
            problem = note_pruned(child.run_dir, child.step, child.prune_reason or "pruned")
            if problem:
                self.display.event(f"#{exp_id}: {problem}")
        elif status in ("succeeded", "diverged", "cancelled"):
            error_line = next(iter((outcome.error or "").splitlines()), "")
            detail = shown if status == "succeeded" or shown else error_line
            self.display.event(f"#{exp_id} {child.name}: {status} at step {child.step}  {detail}".rstrip())
        elif status == "queued":
            why = (f"stopped at step {child.step}, back in the queue" if outcome.status == "released"
                   else f"{outcome.reason}; requeued")
            self.display.event(f"#{exp_id} {child.name}: {why} (resumes from its last checkpoint)")
        elif status == "stopped":
            self.display.event(f"#{exp_id} {child.name}: stopped at step {child.step}: {outcome.reason}")
        else:
            self.display.event(f"#{exp_id} {child.name}: {status}: {outcome.reason}")
