"""State changes of the experiment queue: enqueue, inspect, cancel, retry, remove, reprioritise, workers.

Every change runs in one write transaction and moves rows only along the
lifecycle in :data:`~ganlab.store.lifecycle.TRANSITIONS`; an update is guarded
by the status it expects, so a concurrent worker can never be overwritten by a
stale read. The claim API for workers is :class:`ganlab.store.queue.Queue`, a subclass.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, Select, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from ganlab.errors import ConfigError, DatabaseUnreachable, IllegalTransition, NotFound
from ganlab.gcpause import cyclic_gc_paused
from ganlab.plugin_files import PluginFile
from ganlab.store.chunks import chunks
from ganlab.store.database import WRITE_OPTION, open_engine, translate_error
from ganlab.store.enqueue import add_experiments, checked_and_hashed, find_duplicates
from ganlab.store.extend import Extended, extend_experiments
from ganlab.store.lifecycle import RETRYABLE, STATUSES, check_transition
from ganlab.store.models import Experiment, ExperimentTag, Study, Worker, utcnow
from ganlab.store.reconnect import reconnects
from ganlab.store.records import EnqueueResult, ExperimentRecord, ExperimentSummary, NewExperiment, WorkerRecord
from ganlab.store.studies import NewStudy, StudyRecord, cohort, insert_study, number_trials, read_study, study_exists
from ganlab.store.urls import db_hint, display_url, resolve_url, sqlite_path
from ganlab.store.write_gate import WriteGate

T = TypeVar("T")

_SUMMARY_COLUMNS = (
    Experiment.id, Experiment.name, Experiment.architecture, Experiment.dataset, Experiment.loss,
    Experiment.status, Experiment.priority, Experiment.step, Experiment.total_steps, Experiment.queued_at,
    Experiment.started_at, Experiment.finished_at, Experiment.cancel_requested, Experiment.worker_host,
)

# Built once: per-call statement construction costs more than running them on SQLite.
_TAGS_OF = select(ExperimentTag.experiment_id, ExperimentTag.tag).where(
    ExperimentTag.experiment_id.in_(bindparam("ids", expanding=True))
)
_ROW_OF = select(Experiment.__table__).where(Experiment.id == bindparam("id"))


class Store:
    """The experiment database. Open with :meth:`open`; every method is one transaction."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url
        # Writes take SQLite's lock at BEGIN (see database._configure_sqlite); on
        # PostgreSQL the option is ignored and row locks do the work.
        self._write_engine = engine.execution_options(**{WRITE_OPTION: True})
        self._gate = WriteGate(sqlite_path(url))

    @classmethod
    def open(cls: type[T], db: str | None = None, *, create: bool = False) -> T:
        """Open ``db`` (``--db`` value, URL or path; default ``$GANLAB_DB`` or ./experiments.db).

        ``create``: make the file and tables if missing (enqueueing does; reading must not).
        """
        url = resolve_url(db)
        return cls(open_engine(url, create=create), url)  # type: ignore[call-arg]

    @property
    def where(self) -> str:
        """The database as messages name it."""
        return display_url(self.url)

    def close(self) -> None:
        self.engine.dispose()
        self._gate.close()

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[Connection]:
        """One transaction. Statements run through Core: the queue's hot paths
        (claim, heartbeat, list) would spend most of their time in ORM bookkeeping."""
        body_done = False  # once set, a failure came from the commit, which may or may not have landed
        try:
            if write:
                with self._gate.hold(), self._write_engine.begin() as conn:
                    yield conn
                    body_done = True
            else:
                with self.engine.begin() as conn:
                    yield conn
                    body_done = True
        except DBAPIError as exc:
            error = translate_error(exc, self.url)
            if isinstance(error, DatabaseUnreachable) and exc.connection_invalidated:
                error.connection_dropped = True
                error.nothing_applied = not (write and body_done)
            raise error from exc

    # ------------------------------------------------------------- helpers

    def _not_found(self, ids: Iterable[int]) -> NotFound:
        shown = ", ".join(str(i) for i in sorted(set(ids)))
        plural = "s" if "," in shown else ""
        return NotFound(f"no experiment{plural} {shown} in {self.where} (see: ganlab queue list{db_hint(self.url)})")

    def _lock(self, conn: Connection, ids: Sequence[int]) -> dict[int, str]:
        """Status of each id, with the rows locked for this transaction; NotFound names any missing id."""
        found: dict[int, str] = {}
        for part in chunks(list(dict.fromkeys(ids))):
            rows = conn.execute(
                select(Experiment.id, Experiment.status).where(Experiment.id.in_(part)).with_for_update()
            )
            found.update({r.id: r.status for r in rows})
        missing = [i for i in ids if i not in found]
        if missing:
            raise self._not_found(missing)
        return found

    @staticmethod
    def _move(conn: Connection, ids: Sequence[int], source: str, target: str, **values: Any) -> int:
        """Move rows in ``source`` to ``target``; refuses a move the lifecycle does not allow."""
        check_transition(source, target)
        moved = 0
        for part in chunks(list(ids)):
            result = conn.execute(
                update(Experiment)
                .where(Experiment.id.in_(part), Experiment.status == source)
                .values(status=target, **values)
            )
            moved += result.rowcount
        return moved

    def _tags(self, conn: Connection, ids: Sequence[int]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for part in chunks(list(ids)):
            for exp_id, tag in conn.execute(_TAGS_OF, {"ids": list(part)}):
                out.setdefault(exp_id, []).append(tag)
        return out

    def _record(self, conn: Connection, exp_id: int, row: Mapping[str, Any] | None = None) -> ExperimentRecord:
        if row is None:
            row = conn.execute(_ROW_OF, {"id": exp_id}).mappings().one_or_none()
            if row is None:
                raise self._not_found([exp_id])
        return ExperimentRecord(**row, tags=tuple(sorted(self._tags(conn, [exp_id]).get(exp_id, []))))

    # ------------------------------------------------------------- enqueue

    def duplicates(self, hashes: Iterable[str]) -> dict[str, tuple[int, str]]:
        """For each config hash already queued, running or succeeded: (lowest id, its status)."""
        with self._tx(write=False) as conn:
            return find_duplicates(conn, list(dict.fromkeys(hashes)))

    def enqueue(self, items: Sequence[NewExperiment], *, allow_duplicates: bool = False) -> EnqueueResult:
        """Queue ``items`` in one transaction: all are stored or none.

        Unless ``allow_duplicates``, an item whose config hash matches a queued,
        running or succeeded experiment (or an earlier item) is skipped and reported.
        """
        with cyclic_gc_paused():
            hashed = checked_and_hashed(items)
            with self._tx(write=True) as conn:
                return add_experiments(conn, hashed, allow_duplicates=allow_duplicates)

    def enqueue_study(
        self, study: NewStudy, items: Sequence[NewExperiment], *, allow_duplicates: bool = False
    ) -> tuple[int, EnqueueResult]:
        """Create ``study`` and queue ``items`` as its trials 0.., in one transaction.

        A sampled study's items are its unsampled trials (identical placeholders, never duplicates);
        a grid study's items are checked for duplicates like any sweep.
        """
        sampled = study.sampler != "grid"
        with cyclic_gc_paused():
            hashed = checked_and_hashed(items)
            with self._tx(write=True) as conn:
                study_id = insert_study(conn, study)
                result = add_experiments(conn, hashed, allow_duplicates=allow_duplicates or sampled)
                number_trials(conn, study_id, [i for i, _ in result.queued], unsampled=sampled)
                return study_id, result

    @reconnects()
    def free_study_name(self, base: str) -> str:
        """``base``, or ``base-2``, ``base-3``... whichever no study has yet (for a name nobody chose)."""
        with self._tx(write=False) as conn:
            name, n = base, 1
            while study_exists(conn, name):
                n += 1
                name = f"{base}-{n}"
            return name

    @reconnects()
    def studies(self) -> list[tuple[StudyRecord, dict[str, int]]]:
        """Every study, oldest first, with its trials counted by status."""
        with self._tx(write=False) as conn:
            found = [StudyRecord(**r) for r in conn.execute(select(Study.__table__).order_by(Study.id)).mappings()]
            counts: dict[int, dict[str, int]] = {}
            rows = conn.execute(select(Experiment.study_id, Experiment.status, func.count())
                                .where(Experiment.study_id.is_not(None))
                                .group_by(Experiment.study_id, Experiment.status))
            for study_id, status, n in rows:
                counts.setdefault(study_id, {})[status] = n
        return [(s, counts.get(s.id, {})) for s in found]

    @reconnects()
    def study(self, name: str) -> tuple[StudyRecord, list[tuple[ExperimentRecord, Any]]]:
        """The study named ``name`` and its trials (record, TrialRow), by trial number; NotFound if none."""
        with self._tx(write=False) as conn:
            found = read_study(conn, name=name)
            if found is None:
                raise NotFound(f"no study {name!r} in {self.where} (see: ganlab study list{db_hint(self.url)})")
            trials = cohort(conn, found)
        records = {r.id: r for r in self.get_many([i for i, _ in trials])} if trials else {}
        return found, [(records[i], t) for i, t in trials]

    # ------------------------------------------------------------- reading

    def get(self, exp_id: int) -> ExperimentRecord:
        """The whole record; NotFound if there is no such id."""
        with self._tx(write=False) as conn:
            return self._record(conn, exp_id)

    def get_many(self, ids: Sequence[int]) -> list[ExperimentRecord]:
        """Whole records for ``ids`` in that order, in a few queries (comparisons read thousands)."""
        unique = list(dict.fromkeys(ids))
        rows: dict[int, Mapping[str, Any]] = {}
        with self._tx(write=False) as conn:
            for part in chunks(unique):
                query = select(Experiment.__table__).where(Experiment.id.in_(list(part)))
                rows.update({r["id"]: r for r in conn.execute(query).mappings()})
            missing = [i for i in unique if i not in rows]
            if missing:
                raise self._not_found(missing)
            tags = self._tags(conn, unique)
        return [ExperimentRecord(**rows[i], tags=tuple(sorted(tags.get(i, [])))) for i in unique]

    @reconnects()
    def list_experiments(
        self,
        *,
        statuses: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        architecture: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[ExperimentSummary]:
        """Summaries matching every filter (tags: any of them), by id; ``limit`` keeps the newest."""
        for status in statuses or ():
            if status not in STATUSES:
                raise ConfigError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
        query: Select[Any] = select(*_SUMMARY_COLUMNS)
        if statuses:
            query = query.where(Experiment.status.in_(statuses))
        if architecture:
            query = query.where(Experiment.architecture == architecture)
        if tags:
            tagged = select(ExperimentTag.experiment_id).where(ExperimentTag.tag.in_(list(tags)))
            query = query.where(Experiment.id.in_(tagged))
        query = query.order_by(Experiment.id.desc())
        if limit:
            query = query.limit(limit)
        with self._tx(write=False) as conn:
            rows = conn.execute(query).all()
            tag_map: dict[int, tuple[str, ...]] = {}
            # Tags in one query over the same selection (not one per row).
            tag_query = (
                select(ExperimentTag.experiment_id, ExperimentTag.tag)
                .where(ExperimentTag.experiment_id.in_(query.with_only_columns(Experiment.id)))
                .order_by(ExperimentTag.experiment_id, ExperimentTag.tag)
            )
            for exp_id, tag in conn.execute(tag_query):
                tag_map[exp_id] = tag_map.get(exp_id, ()) + (tag,)
        make = ExperimentSummary._make
        out = [make((*row, tag_map.get(row[0], ()))) for row in rows]
        if not newest_first:
            out.reverse()
        return out

    @reconnects()
    def count_by_status(self) -> dict[str, int]:
        with self._tx(write=False) as conn:
            rows = conn.execute(select(Experiment.status, func.count()).group_by(Experiment.status))
            counts = dict.fromkeys(STATUSES, 0)
            counts.update({status: n for status, n in rows})
            return counts

    # ------------------------------------------------------------- changes

    def cancel(self, ids: Sequence[int]) -> list[tuple[int, str]]:
        """Cancel queued experiments now; ask the workers running the others to stop.

        Returns ``(id, "cancelled" | "cancel requested")``. All or nothing:
        an unknown id or a finished experiment changes nothing.
        """
        with self._tx(write=True) as conn:
            found = self._lock(conn, ids)
            for exp_id in ids:
                if found[exp_id] not in ("queued", "running"):
                    raise IllegalTransition(
                        f"experiment {exp_id} is {found[exp_id]}; only queued or running experiments can be cancelled"
                    )
            queued = [i for i in dict.fromkeys(ids) if found[i] == "queued"]
            running = [i for i in dict.fromkeys(ids) if found[i] == "running"]
            self._move(conn, queued, "queued", "cancelled", finished_at=utcnow())
            for part in chunks(running):
                conn.execute(
                    update(Experiment)
                    .where(Experiment.id.in_(part), Experiment.status == "running")
                    .values(cancel_requested=True)
                )
            return [(i, "cancelled" if found[i] == "queued" else "cancel requested") for i in dict.fromkeys(ids)]

    def cancel_all_queued(self) -> list[int]:
        """Cancel every queued experiment; returns their ids."""
        with self._tx(write=True) as conn:
            ids = list(conn.scalars(
                select(Experiment.id).where(Experiment.status == "queued").order_by(Experiment.id).with_for_update()
            ))
            self._move(conn, ids, "queued", "cancelled", finished_at=utcnow())
            return ids

    def retry(
        self, ids: Sequence[int], *, plugin_files: Mapping[int, Sequence[PluginFile]] | None = None
    ) -> list[tuple[int, str | None]]:
        """Put failed, diverged or cancelled experiments back in the queue (all or nothing).

        Returns ``(id, run_dir)``: the run directory is kept, so the worker
        resumes from the last checkpoint. Attempts start again from zero.
        ``plugin_files``: new records of the local plugin files, by id (after a reviewed change).
        """
        unique = list(dict.fromkeys(ids))
        with self._tx(write=True) as conn:
            found = self._lock(conn, unique)
            for exp_id in unique:
                if found[exp_id] not in RETRYABLE:
                    raise IllegalTransition(
                        f"experiment {exp_id} is {found[exp_id]}; only {', '.join(RETRYABLE)} experiments can be retried"
                    )
            for source in RETRYABLE:
                self._move(
                    conn, [i for i in unique if found[i] == source], source, "queued",
                    attempts=0, error=None, metrics=None, started_at=None, finished_at=None, cancel_requested=False,
                    worker_id=None, worker_host=None, worker_pid=None, lease_expires_at=None,
                )
            for exp_id, files in (plugin_files or {}).items():
                conn.execute(update(Experiment).where(Experiment.id == exp_id)
                             .values(plugin_files=[f.to_dict() for f in files]))
            run_dirs: dict[int, str | None] = {}
            for part in chunks(unique):
                for exp_id, run_dir in conn.execute(
                    select(Experiment.id, Experiment.run_dir).where(Experiment.id.in_(part))
                ):
                    run_dirs[exp_id] = run_dir
            return [(i, run_dirs[i]) for i in unique]

    def extend(self, ids: Sequence[int], steps: int) -> list[Extended]:
        """Raise succeeded, pruned or stopped experiments' step budget to ``steps`` and queue them again.

        All or nothing (see :func:`ganlab.store.extend.extend_experiments`): the
        worker resumes each in its own run dir from its latest checkpoint.
        """
        unique = list(dict.fromkeys(ids))
        with self._tx(write=True) as conn:
            return extend_experiments(conn, unique, int(steps), self._lock(conn, unique))

    def remove(self, ids: Sequence[int]) -> list[int]:
        """Delete experiments that are not running (all or nothing); returns the ids removed."""
        unique = list(dict.fromkeys(ids))
        with self._tx(write=True) as conn:
            found = self._lock(conn, unique)
            running = [i for i in unique if found[i] == "running"]
            if running:
                raise IllegalTransition(
                    f"experiment {running[0]} is running; cancel it first (ganlab queue cancel {running[0]}{db_hint(self.url)}) "
                    "and remove it once it has stopped"
                )
            for part in chunks(unique):
                conn.execute(delete(ExperimentTag).where(ExperimentTag.experiment_id.in_(part)))
                conn.execute(
                    delete(Experiment).where(Experiment.id.in_(part), Experiment.status != "running")
                )
            return unique

    def set_priority(self, exp_id: int, priority: int) -> ExperimentRecord:
        """Change the priority (higher is claimed first)."""
        with self._tx(write=True) as conn:
            self._lock(conn, [exp_id])
            conn.execute(update(Experiment).where(Experiment.id == exp_id).values(priority=int(priority)))
            return self._record(conn, exp_id)

    # ------------------------------------------------------------- workers

    @reconnects(idempotent=True)
    def register_worker(self, worker_id: str, *, host: str | None = None, pid: int | None = None, gpus: str = "",
                        slurm_job_id: str | None = None, slurm_task: int | None = None) -> WorkerRecord:
        """Record a worker as running (again, if the id was seen before), with its SLURM job and task if any."""
        now = utcnow()
        values = {"host": host or socket.gethostname(), "pid": pid if pid is not None else os.getpid(), "gpus": gpus,
                  "started_at": now, "heartbeat_at": now, "status": "running",
                  "slurm_job_id": slurm_job_id, "slurm_task": slurm_task}
        with self._tx(write=True) as conn:
            known = conn.scalar(select(Worker.worker_id).where(Worker.worker_id == worker_id).with_for_update())
            if known is None:
                conn.execute(insert(Worker).values(worker_id=worker_id, **values))
            else:
                conn.execute(update(Worker).where(Worker.worker_id == worker_id).values(**values))
            return WorkerRecord(**conn.execute(select(Worker.__table__).where(Worker.worker_id == worker_id)).mappings().one())

    def worker_heartbeat(self, worker_id: str) -> None:
        """Mark a worker alive now."""
        self._touch_worker(worker_id, status="running")

    def worker_stopped(self, worker_id: str) -> None:
        """Mark a worker as stopped (it exited cleanly)."""
        self._touch_worker(worker_id, status="stopped")

    @reconnects(idempotent=True)
    def _touch_worker(self, worker_id: str, *, status: str) -> None:
        with self._tx(write=True) as conn:
            result = conn.execute(
                update(Worker).where(Worker.worker_id == worker_id).values(heartbeat_at=utcnow(), status=status)
            )
            if result.rowcount == 0:
                raise NotFound(f"no worker {worker_id!r} in {self.where}; register it first (register_worker)")

    def list_workers(self, *, include_stopped: bool = True) -> list[WorkerRecord]:
        """Every worker seen, oldest first (``include_stopped=False``: only running ones)."""
        query = select(Worker.__table__).order_by(Worker.started_at, Worker.worker_id)
        if not include_stopped:
            query = query.where(Worker.status == "running")
        with self._tx(write=False) as conn:
            return [WorkerRecord(**row) for row in conn.execute(query).mappings()]

