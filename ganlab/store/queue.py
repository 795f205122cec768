"""The claim API a worker uses: claim, heartbeat, finish, release, reclaim.

Protocol, for one worker::

    q = Queue.open(url)                       # or Queue.open(None): $GANLAB_DB / ./experiments.db
    q.register_worker(worker_id, gpus="0")
    q.reclaim_expired(max_attempts=3)         # requeue runs whose worker died
    claim = q.claim(worker_id, lease_s=60)    # None when nothing is queued
    q.set_run_dir(claim.id, claim.token, "/runs/17")
    while training:
        beat = q.renew(claim.id, claim.token, step=s, losses={"d": .7, "g": 1.2}, lease_s=60)
        if beat.cancel_requested:
            q.finish(claim.id, claim.token, "cancelled"); break
    q.finish(claim.id, claim.token, "succeeded", metrics={"fid": 31.2})
    q.worker_stopped(worker_id)

Leases and fencing: a claim holds the experiment until ``lease_expires_at``;
each :meth:`Queue.renew` pushes that forward. If the worker stops renewing,
:meth:`Queue.reclaim_expired` (called by any worker) puts the experiment
back in the queue, or fails it after ``max_attempts`` claims. Every claim
increments the experiment's fencing token; ``renew``, ``finish``,
``release`` and ``set_run_dir`` only act while the caller's token is the
current one and the experiment is running, so a worker that was presumed
dead and comes back cannot overwrite the new owner's progress or result: it
gets :class:`~ganlab.errors.LeaseLost` and must stop.

Claims are atomic on both dialects: ``SELECT ... FOR UPDATE SKIP LOCKED`` on
PostgreSQL, a ``BEGIN IMMEDIATE`` transaction on SQLite (FOR UPDATE renders
as nothing there; the database-wide write lock serialises claimers).
Lease times come from the clocks of the worker hosts: keep them in sync (NTP).
"""

from __future__ import annotations

import functools
import math
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, Select, Update, bindparam, exists, select, update
from sqlalchemy.engine import Connection

from ganlab.errors import ConfigError, IllegalTransition, LeaseLost
from ganlab.store.lifecycle import FINAL_STATUSES, TRANSITIONS, check_transition
from ganlab.store.models import Experiment, ExperimentTag, UTCDateTime, utcnow
from ganlab.store.reconnect import reconnects
from ganlab.store.records import ExperimentRecord
from ganlab.store.storage import Store
from ganlab.store.studies import UNSAMPLED, cohort, fenced_row, lock_study, sample_claimed, store_value
from ganlab.store.urls import db_hint

if TYPE_CHECKING:
    from ganlab.search.pruning import Decision

DEFAULT_LEASE_S = 60.0
#: How a pruner's decision starts (ganlab.search.pruning); on a running row it is a decision not yet carried out.
PRUNED_PREFIX = "pruned by "
DEFAULT_MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Claim:
    """An experiment this worker now runs; ``token`` must accompany every later call about it."""

    experiment: ExperimentRecord
    token: int
    lease_expires_at: datetime

    @property
    def id(self) -> int:
        return self.experiment.id


@dataclass(frozen=True)
class Heartbeat:
    """Answer to :meth:`Queue.renew`: stop training if ``cancel_requested``."""

    cancel_requested: bool
    lease_expires_at: datetime


@dataclass(frozen=True)
class Reclaimed:
    """An expired lease taken back: the experiment is now ``status`` (queued, failed or cancelled)."""

    id: int
    status: str
    reason: str


_CLAIMED_VALUES = dict(
    status="running", fence=Experiment.fence + 1, attempts=Experiment.attempts + 1,
    worker_id=bindparam("worker_id"), worker_host=bindparam("worker_host"), worker_pid=bindparam("worker_pid"),
    lease_expires_at=bindparam("expires", type_=UTCDateTime()), started_at=bindparam("now", type_=UTCDateTime()),
    heartbeat_at=bindparam("now", type_=UTCDateTime()), finished_at=None, cancel_requested=False,
    # A reason left from an earlier ending (a pruned run extended) is not this run's; a pruner's
    # pending decision never reaches here: reclaim_expired ends such a run as pruned instead.
    stop_reason=None,
)


@functools.cache
def _claim_statements(by_tag: bool) -> tuple[Select[Any], Update, Update]:
    """The claim's probe (any candidate?), take and take-the-pack statements, built once: claims are the hot path."""
    candidate = Experiment.__table__.alias("candidate")  # an alias, so the subquery is not correlated
    earlier = Experiment.__table__.alias("earlier")
    pick = select(candidate.c.id).where(candidate.c.status == "queued")
    if by_tag:
        pick = pick.where(exists().where(
            ExperimentTag.experiment_id == candidate.c.id, ExperimentTag.tag.in_(bindparam("tags", expanding=True))
        ))
    probe = pick.limit(1)
    # A pack is entered only by its first queued row: two claimers can then never split one
    # (on PostgreSQL, B skipping A's locked first row finds the pack's other rows ineligible).
    pick = pick.where(~exists().where(
        earlier.c.pack_key == candidate.c.pack_key, earlier.c.status == "queued", earlier.c.id < candidate.c.id
    ))
    pick = pick.order_by(candidate.c.priority.desc(), candidate.c.id).limit(1).with_for_update(skip_locked=True)
    # One statement picks and takes the row: UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING.
    take = (
        update(Experiment)
        .where(Experiment.id == pick.scalar_subquery(), Experiment.status == "queued")
        .values(**_CLAIMED_VALUES)
        .returning(*Experiment.__table__.c)
    )
    # The rest of the pack, in the same transaction: all of its queued rows or, with the first, none.
    take_pack = (
        update(Experiment)
        .where(Experiment.pack_key == bindparam("pack"), Experiment.status == "queued")
        .values(**_CLAIMED_VALUES)
        .returning(*Experiment.__table__.c)
    )
    return probe, take, take_pack


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None: JSON has no such numbers and PostgreSQL refuses them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


class Queue(Store):
    """:class:`Store` plus the worker's side of the queue."""

    def __init__(self, engine: Engine, url: str) -> None:
        super().__init__(engine, url)
        self._found_work: set[tuple[str, ...]] = set()  # tag filters whose last claim took an experiment

    def claim(
        self,
        worker_id: str,
        *,
        host: str | None = None,
        pid: int | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        tags: Sequence[str] | None = None,
    ) -> Claim | None:
        """Atomically take the next queued experiment (highest priority, then oldest), or None.

        ``tags``: only experiments carrying at least one of these tags.
        Increments the fencing token and the attempt count. A packed
        experiment is taken alone (it then trains alone); see :meth:`claim_pack`.
        """
        claims = self._claim(worker_id, host, pid, lease_s, tags, packs=False)
        return claims[0] if claims else None

    def claim_pack(
        self,
        worker_id: str,
        *,
        host: str | None = None,
        pid: int | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        tags: Sequence[str] | None = None,
    ) -> list[Claim]:
        """Like :meth:`claim`, but a packed experiment comes with every queued row of its pack (same
        ``pack_key``), in one transaction: the list holds one claim, a whole pack's, or none.

        Each row gets its own fencing token and lease, renewed and ended one by one as usual.
        """
        return self._claim(worker_id, host, pid, lease_s, tags, packs=True)

    def _claim(
        self, worker_id: str, host: str | None, pid: int | None, lease_s: float, tags: Sequence[str] | None, *,
        packs: bool,
    ) -> list[Claim]:
        check_transition("queued", "running")
        while True:
            taken = self._take(worker_id, host, pid, lease_s, tags, packs)
            if taken is None:
                return []
            rows, expires = taken
            claims = []
            for row in rows:
                if row.get("study_id") is not None and str(row["config_hash"]).startswith(UNSAMPLED):
                    try:
                        self._sample(row["id"], row["fence"])
                    except ConfigError as exc:
                        # A study row out of shape (the queue is untrusted input): this trial fails, the claim goes on.
                        self.finish(row["id"], row["fence"], "failed", error=f"could not sample this trial: {exc}")
                        continue
                    row = {"id": row["id"]}  # read again below: the config now holds the drawn values
                record = self._claimed_record(row)
                claims.append(Claim(record, record.fence, expires))
            if claims:
                return claims

    @reconnects(idempotent=True)
    def _sample(self, exp_id: int, token: int) -> None:
        """Draw a claimed trial's values and write them into its config, under its fence (see store/studies.py)."""
        import ganlab.search.sampler  # noqa: F401 - Optuna's import, outside the write lock

        with self._tx(write=True) as conn:
            sample_claimed(conn, exp_id, token)

    @reconnects()
    def report_objective(self, exp_id: int, token: int, step: int, metrics: Mapping[str, Any]) -> Decision:
        """Store a trial's objective at ``step`` (from an evaluation's ``metrics``) and ask its study's pruner.

        A prune is written as the row's ``stop_reason`` while the run still goes on, so it
        outlives this worker: if the worker dies before the run ends, whoever reclaims the
        lease ends it as ``pruned`` (:meth:`reclaim_expired`) instead of running it again.
        """
        from ganlab.search.pruning import Decision, decide

        with self._tx(write=True) as conn:
            row = fenced_row(conn, exp_id, token)
            if row.study_id is None:
                return Decision(False)
            study = lock_study(conn, row.study_id)
            value = metrics.get(study.objective)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                return Decision(False)
            store_value(conn, exp_id, int(step), float(value))
            if row.stop_reason:
                return Decision(True, row.stop_reason)  # decided at an earlier evaluation
            train = row.config.get("train", {}) if isinstance(row.config, dict) else {}
            if study.pruner == "none" or int(step) >= int(train.get("steps", 0)):
                return Decision(False)  # nothing to prune, or the run is at its end anyway
            trials = cohort(conn, study)
            current = next((t for i, t in trials if i == exp_id), None)
            if current is None:
                return Decision(False)
            every = max(1, int(train.get("eval_every", 1)))
            decision = decide(study.pruner, study.direction, study.objective, every, current, int(step),
                              [t for _, t in trials])
            if decision.prune:
                self._fenced_update(conn, exp_id, token, {"stop_reason": decision.reason})
            return decision

    @reconnects()
    def _take(
        self, worker_id: str, host: str | None, pid: int | None, lease_s: float, tags: Sequence[str] | None,
        packs: bool = False,
    ) -> tuple[list[Mapping[str, Any]], datetime] | None:
        """The claim's write: the taken rows and their leases' end, or None when there was nothing to take."""
        probe, take, take_pack = _claim_statements(bool(tags))
        params: dict[str, Any] = {"tags": list(tags)} if tags else {}
        # Idle workers poll; a plain read first spares them SQLite's database-wide write lock.
        # Right after a claim that found work the queue most likely has more: skip the read.
        key = tuple(tags or ())
        if key not in self._found_work:
            with self._tx(write=False) as conn:
                if conn.scalar(probe, params) is None:
                    return None
        now = utcnow()
        expires = now + timedelta(seconds=lease_s)
        params.update(
            worker_id=worker_id, worker_host=host or socket.gethostname(),
            worker_pid=pid if pid is not None else os.getpid(), now=now, expires=expires,
        )
        with self._tx(write=True) as conn:
            row = conn.execute(take, params).mappings().one_or_none()
            rows = [row] if row is not None else []
            if row is not None and packs and row["pack_key"] is not None:
                rest = conn.execute(take_pack, {**params, "pack": row["pack_key"]}).mappings().all()
                rows += sorted(rest, key=lambda r: r["id"])
        if row is None:
            self._found_work.discard(key)
            return None  # the queue ran dry, or another worker took the last one after our read
        self._found_work.add(key)
        return rows, expires

    @reconnects()
    def _claimed_record(self, row: Mapping[str, Any]) -> ExperimentRecord:
        # Tags never change after enqueue, so they are read after the write lock is released.
        # Its own retry: running the whole claim again would take a second experiment.
        with self._tx(write=False) as conn:
            return self._record(conn, row["id"], row if len(row) > 1 else None)

    @reconnects(idempotent=True)
    def renew(
        self,
        exp_id: int,
        token: int,
        *,
        step: int | None = None,
        losses: Mapping[str, float] | None = None,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> Heartbeat:
        """Extend the lease and record progress; raises LeaseLost if ``token`` is no longer current."""
        now = utcnow()
        values: dict[str, Any] = {"lease_expires_at": now + timedelta(seconds=lease_s), "heartbeat_at": now}
        if step is not None:
            values["step"] = int(step)
        if losses is not None:
            values["last_losses"] = json_safe({k: float(v) for k, v in losses.items()})
        with self._tx(write=True) as conn:
            self._fenced_update(conn, exp_id, token, values)
            cancel = bool(conn.scalar(select(Experiment.cancel_requested).where(Experiment.id == exp_id)))
            return Heartbeat(cancel, values["lease_expires_at"])

    @reconnects()
    def finish(
        self,
        exp_id: int,
        token: int,
        status: str,
        *,
        metrics: Mapping[str, Any] | None = None,
        error: str | None = None,
        step: int | None = None,
        losses: Mapping[str, float] | None = None,
        stop_reason: str | None = None,
    ) -> None:
        """End the run with a final status (succeeded, failed, pruned, ...); only the current token may.

        ``losses`` are the last ones the run reported: a run shorter than a heartbeat has no others.
        ``stop_reason`` says why a run was ``stopped`` or ``pruned`` before its last step.
        """
        if status not in FINAL_STATUSES:
            raise IllegalTransition(
                f"finish status {status!r} is not one of {', '.join(FINAL_STATUSES)} (use release() to requeue)"
            )
        values: dict[str, Any] = {
            "status": status, "finished_at": utcnow(), "lease_expires_at": None,
            "metrics": json_safe(dict(metrics)) if metrics is not None else None, "error": error,
            "stop_reason": stop_reason,
        }
        if step is not None:
            values["step"] = int(step)
        if losses:
            values["last_losses"] = json_safe({k: float(v) for k, v in losses.items()})
        with self._tx(write=True) as conn:
            self._fenced_update(conn, exp_id, token, values)

    @reconnects()
    def release(self, exp_id: int, token: int, *, step: int | None = None) -> str:
        """Hand a running experiment back to the queue (e.g. the worker is shutting down); returns its new status.

        The attempt is given back too: a clean hand-back is not a failure. A
        cancel requested meanwhile wins: the experiment is cancelled instead of
        queued again (else the request would be lost with the lease).
        """
        with self._tx(write=True) as conn:
            cancel = conn.scalar(
                select(Experiment.cancel_requested).where(Experiment.id == exp_id).with_for_update()
            )
            values: dict[str, Any] = {} if step is None else {"step": int(step)}
            if cancel:
                values.update(status="cancelled", finished_at=utcnow(), lease_expires_at=None,
                              error="cancelled by request")
                self._fenced_update(conn, exp_id, token, values)
                return "cancelled"
            values.update(status="queued", attempts=Experiment.attempts - 1, lease_expires_at=None,
                          worker_id=None, worker_host=None, worker_pid=None, started_at=None)
            self._fenced_update(conn, exp_id, token, values)
            return "queued"

    @reconnects()
    def requeue(
        self, exp_id: int, token: int, *, reason: str, detail: str = "", max_attempts: int = DEFAULT_MAX_ATTEMPTS
    ) -> str:
        """After a crash worth retrying (killed, out of memory): back to the queue, the attempt counted.

        Once ``max_attempts`` claims have crashed the experiment is failed with
        ``reason`` (and ``detail``, e.g. the log's last lines) instead. Returns the new status.
        """
        with self._tx(write=True) as conn:
            attempts = conn.execute(select(Experiment.attempts).where(Experiment.id == exp_id)).scalar_one_or_none()
            if attempts is not None and attempts >= max_attempts:
                self._fenced_update(conn, exp_id, token, {
                    "status": "failed", "finished_at": utcnow(), "lease_expires_at": None,
                    "error": f"{reason} (attempt {attempts} of {max_attempts}; to try again: "
                             f"ganlab queue retry {exp_id}{db_hint(self.url)})\n{detail}".rstrip(),
                })
                return "failed"
            self._fenced_update(conn, exp_id, token, {
                "status": "queued", "lease_expires_at": None, "error": f"attempt {attempts}: {reason}\n{detail}".rstrip(),
                "worker_id": None, "worker_host": None, "worker_pid": None, "started_at": None,
            })
            return "queued"

    @reconnects(idempotent=True)
    def set_run_dir(self, exp_id: int, token: int, path: str, *, host: str | None = None) -> None:
        """Record where the run writes checkpoints and logs (kept across retries, for resuming)."""
        with self._tx(write=True) as conn:
            self._fenced_update(conn, exp_id, token, {"run_dir": str(path), "run_host": host or socket.gethostname()})

    # Idempotent for the rows: a second pass finds the ones the first moved no longer running
    # (only the list of them, for the log, is lost).
    @reconnects(idempotent=True)
    def reclaim_expired(self, *, max_attempts: int = DEFAULT_MAX_ATTEMPTS, now: datetime | None = None) -> list[Reclaimed]:
        """Take back every running experiment whose lease ran out before ``now``.

        It returns to the queue, or fails after ``max_attempts`` claims, or is
        cancelled if a cancel was requested. The dead worker's token is then
        stale, so it cannot write anything if it wakes up.
        """
        now = now or utcnow()
        out: list[Reclaimed] = []
        columns = (Experiment.id, Experiment.attempts, Experiment.cancel_requested, Experiment.worker_id,
                   Experiment.worker_host, Experiment.worker_pid, Experiment.lease_expires_at,
                   Experiment.stop_reason, Experiment.pack_key)
        with self._tx(write=True) as conn:
            rows = conn.execute(
                select(*columns)
                .where(Experiment.status == "running", Experiment.lease_expires_at < now)
                .order_by(Experiment.id)
                .with_for_update(skip_locked=True)
            ).all()
            # A pack is one process: when one member's lease lapses its siblings' leases (renewed a moment
            # later) are as dead. Taking them back together lets the pack be claimed again whole, instead
            # of its first member being claimed alone before the others expire.
            held = {(r.pack_key, r.worker_id) for r in rows if r.pack_key is not None}
            if held:
                known = {r.id for r in rows}
                siblings = conn.execute(
                    select(*columns)
                    .where(Experiment.status == "running", Experiment.pack_key.in_({k for k, _ in held}))
                    .with_for_update(skip_locked=True)
                ).all()
                rows = sorted([*rows, *(s for s in siblings if s.id not in known and (s.pack_key, s.worker_id) in held)],
                              key=lambda r: r.id)
            for r in rows:
                who = f"worker {r.worker_id} on {r.worker_host} (pid {r.worker_pid})"
                if r.lease_expires_at is not None and r.lease_expires_at < now:
                    lapse = f"lease expired at {r.lease_expires_at:%Y-%m-%d %H:%M:%S} UTC"
                else:
                    lapse = "the lease of another seed of its pack expired"
                if r.cancel_requested:
                    status, reason = "cancelled", f"cancelled; {who} stopped heartbeating ({lapse})"
                    values: dict[str, Any] = {"finished_at": now, "error": reason}
                elif (r.stop_reason or "").startswith(PRUNED_PREFIX):
                    # The pruner had decided before the worker died: the decision stands, nothing reruns.
                    status, reason = "pruned", f"{r.stop_reason}; {who} stopped heartbeating before it ended"
                    values = {"finished_at": now}
                elif r.attempts >= max_attempts:
                    status = "failed"
                    reason = (f"{who} stopped heartbeating ({lapse}) on attempt {r.attempts} of {max_attempts}; "
                              f"to try again: ganlab queue retry {r.id}{db_hint(self.url)}")
                    values = {"finished_at": now, "error": reason}
                else:
                    status = "queued"
                    reason = f"{who} stopped heartbeating ({lapse}); requeued after attempt {r.attempts} of {max_attempts}"
                    values = {"started_at": None}
                values.update(lease_expires_at=None)
                self._move(conn, [r.id], "running", status, **values)
                out.append(Reclaimed(r.id, status, reason))
        return out

    def _fenced_update(self, conn: Connection, exp_id: int, token: int, values: Mapping[str, Any]) -> None:
        """Apply ``values`` only while ``token`` holds a running claim; else raise LeaseLost saying why."""
        target = values.get("status")
        if target is not None and target not in TRANSITIONS["running"]:
            raise IllegalTransition(f"a running experiment cannot go to {target}")
        result = conn.execute(
            update(Experiment)
            .where(Experiment.id == exp_id, Experiment.status == "running", Experiment.fence == token)
            .values(**values)
        )
        if result.rowcount == 1:
            return
        row = conn.execute(
            select(Experiment.status, Experiment.fence, Experiment.worker_id, Experiment.worker_host)
            .where(Experiment.id == exp_id)
        ).one_or_none()
        if row is None:
            raise LeaseLost(f"experiment {exp_id} was removed from the queue; stop working on it")
        if row.fence != token:
            raise LeaseLost(
                f"experiment {exp_id} was claimed again (token {row.fence}, yours {token}) by worker "
                f"{row.worker_id} on {row.worker_host}; stop working on it"
            )
        raise LeaseLost(f"experiment {exp_id} is {row.status}, no longer running under token {token}; stop working on it")


__all__ = ["Claim", "DEFAULT_LEASE_S", "DEFAULT_MAX_ATTEMPTS", "Heartbeat", "Queue", "Reclaimed", "json_safe"]
