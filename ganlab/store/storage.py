"""State changes of the experiment queue: enqueue, inspect, cancel, retry, remove, reprioritise, workers.

Every change runs in one write transaction and moves rows only along the
lifecycle in :data:`TRANSITIONS`; an update is guarded by the status it
expects, so a concurrent worker can never be overwritten by a stale read.
The claim API for workers is :class:`ganlab.store.queue.Queue`, a subclass.
"""

from __future__ import annotations

import functools
import json
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Concatenate, NamedTuple, ParamSpec, TypeVar

from sqlalchemy import Engine, Select, bindparam, delete, func, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from ganlab.config import ExperimentConfig
from ganlab.errors import ConfigError, DatabaseUnreachable, IllegalTransition, NotFound, StoreError
from ganlab.gcpause import cyclic_gc_paused
from ganlab.names import check_name
from ganlab.plugin_files import PluginFile
from ganlab.store.database import (
    WRITE_OPTION,
    JSONText,
    WriteGate,
    db_hint,
    display_url,
    open_engine,
    resolve_url,
    sqlite_path,
    translate_error,
)
from ganlab.store.models import STATUSES, Experiment, ExperimentTag, Worker

# The lifecycle. ``running -> queued`` is a release or a reclaimed lease;
# ``failed/diverged/cancelled -> queued`` is a retry. Succeeded is final.
TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "cancelled"}),
    "running": frozenset({"succeeded", "failed", "diverged", "cancelled", "queued"}),
    "succeeded": frozenset(),
    "failed": frozenset({"queued"}),
    "diverged": frozenset({"queued"}),
    "cancelled": frozenset({"queued"}),
}
FINAL_STATUSES = ("succeeded", "failed", "diverged", "cancelled")
RETRYABLE = ("failed", "diverged", "cancelled")
# A config in one of these states makes an identical new one a duplicate.
DUPLICATE_STATUSES = ("queued", "running", "succeeded")
MAX_TAG_LEN = 100
# Advisory-lock key ("ganlenq") serialising duplicate-checked enqueues on PostgreSQL; see Store._enqueue.
_PG_ENQUEUE_LOCK = 0x67616E6C656E71
_CHUNK = 500  # ids per IN (...) list, well under every dialect's parameter limit

T = TypeVar("T")
S = TypeVar("S", bound="Store")
P = ParamSpec("P")


def reconnects(*, idempotent: bool = False) -> Callable[[Callable[Concatenate[S, P], T]], Callable[Concatenate[S, P], T]]:
    """Run a one-transaction method once more when the server cut its connection mid-transaction.

    A long-lived worker's pooled connection can be cut while it is in use (a
    server restart, a failover, pg_terminate_backend); the pool's pre-ping only
    catches connections that died while idle. A transaction cut before its
    commit (or one that only read) left nothing behind, so one retry on a fresh
    connection makes the drop invisible. A write cut during its commit may or
    may not have landed: it is retried only if ``idempotent`` (applying it twice
    is the same as once), else raised for the caller's own recovery.
    """

    def decorate(method: Callable[Concatenate[S, P], T]) -> Callable[Concatenate[S, P], T]:
        @functools.wraps(method)
        def retrying(self: S, *args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return method(self, *args, **kwargs)
            except DatabaseUnreachable as exc:
                if not (exc.nothing_applied or (idempotent and exc.connection_dropped)):
                    raise
            return method(self, *args, **kwargs)

        return retrying

    return decorate


def _bind_value(type_: Any, value: Any, dialect: Any) -> Any:
    """``value`` as the DBAPI receives it for a column of ``type_``."""
    process = type_.dialect_impl(dialect).bind_processor(dialect)
    return process(value) if process is not None else value


def utcnow() -> datetime:
    return datetime.now(UTC)


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def check_transition(source: str, target: str) -> None:
    """Raise IllegalTransition unless the lifecycle allows ``source -> target``."""
    if target not in TRANSITIONS.get(source, ()):
        allowed = ", ".join(sorted(TRANSITIONS.get(source, ()))) or "nothing (it is final)"
        raise IllegalTransition(f"an experiment cannot go from {source} to {target}; from {source} it can go to {allowed}")


def check_tag(tag: str) -> str:
    """A tag is a short word: no spaces or commas (they separate tags on the command line), nothing unprintable."""
    if not tag or len(tag) > MAX_TAG_LEN or not tag.isprintable() or any(c.isspace() or c == "," for c in tag):
        raise ConfigError(
            f"tag {tag!r} is not allowed; use 1-{MAX_TAG_LEN} printable characters without spaces or commas"
        )
    return tag


# ------------------------------------------------------------------ records


@dataclass(frozen=True)
class NewExperiment:
    """What :meth:`Store.enqueue` stores: a resolved config plus queue metadata."""

    config: ExperimentConfig
    name: str
    priority: int = 0
    tags: tuple[str, ...] = ()
    #: The local plugin files the config uses, with their SHA-256 (``Registry.plugin_files``).
    plugin_files: tuple[PluginFile, ...] = ()


@dataclass(frozen=True)
class Skipped:
    """A config not queued because an identical one exists (``existing_id`` None: earlier in the same batch)."""

    name: str
    config_hash: str
    existing_id: int | None
    existing_status: str | None


@dataclass(frozen=True)
class EnqueueResult:
    queued: list[tuple[int, str]]
    skipped: list[Skipped]


class ExperimentSummary(NamedTuple):
    """The columns ``ganlab queue list`` shows (a tuple: cheap to build for 100,000 rows)."""

    id: int
    name: str
    architecture: str
    dataset: str
    loss: str
    status: str
    priority: int
    step: int
    total_steps: int
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested: bool
    worker_host: str | None
    tags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = self._asdict()
        for key in ("queued_at", "started_at", "finished_at"):
            out[key] = _iso(out[key])
        out["tags"] = list(self.tags)
        return out


_SUMMARY_COLUMNS = (
    Experiment.id, Experiment.name, Experiment.architecture, Experiment.dataset, Experiment.loss,
    Experiment.status, Experiment.priority, Experiment.step, Experiment.total_steps, Experiment.queued_at,
    Experiment.started_at, Experiment.finished_at, Experiment.cancel_requested, Experiment.worker_host,
)


@dataclass(frozen=True)
class ExperimentRecord:
    """A whole experiment row, detached from the database."""

    id: int
    name: str
    architecture: str
    dataset: str
    loss: str
    config: dict[str, Any]
    config_hash: str
    priority: int
    status: str
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    worker_id: str | None
    worker_host: str | None
    worker_pid: int | None
    lease_expires_at: datetime | None
    fence: int
    cancel_requested: bool
    step: int
    total_steps: int
    heartbeat_at: datetime | None
    last_losses: dict[str, Any] | None
    metrics: dict[str, Any] | None
    error: str | None
    run_dir: str | None
    run_host: str | None
    tags: tuple[str, ...] = field(default=())
    plugin_files: list[dict[str, Any]] | None = None  # None: queued before they were recorded

    def experiment_config(self) -> ExperimentConfig:
        return ExperimentConfig.from_dict(self.config)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            out[key] = _iso(value) if isinstance(value, datetime) else list(value) if key == "tags" else value
        return out


@dataclass(frozen=True)
class WorkerRecord:
    worker_id: str
    host: str
    pid: int
    gpus: str
    started_at: datetime
    heartbeat_at: datetime
    status: str

    def to_dict(self) -> dict[str, Any]:
        return {k: _iso(v) if isinstance(v, datetime) else v for k, v in self.__dict__.items()}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# -------------------------------------------------------------------- store

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
        for part in _chunks(list(dict.fromkeys(ids))):
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
        for part in _chunks(list(ids)):
            result = conn.execute(
                update(Experiment)
                .where(Experiment.id.in_(part), Experiment.status == source)
                .values(status=target, **values)
            )
            moved += result.rowcount
        return moved

    def _tags(self, conn: Connection, ids: Sequence[int]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for part in _chunks(list(ids)):
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
            return self._duplicates(conn, list(dict.fromkeys(hashes)))

    @staticmethod
    def _duplicates(conn: Connection, hashes: Sequence[str]) -> dict[str, tuple[int, str]]:
        found: dict[str, tuple[int, str]] = {}
        for part in _chunks(hashes):
            # The status is checked here, not in the WHERE: given both, SQLite searched the status
            # index (every queued row) instead of the hash index, scanning the whole queue once
            # per chunk (re-adding a 100,000-point sweep to a queue holding it took 15 s, now 4.5 s).
            rows = conn.execute(
                select(Experiment.config_hash, Experiment.id, Experiment.status)
                .where(Experiment.config_hash.in_(part))
                .order_by(Experiment.id)
            )
            for h, exp_id, status in rows:
                if status in DUPLICATE_STATUSES:
                    found.setdefault(h, (exp_id, status))
        return found

    def enqueue(self, items: Sequence[NewExperiment], *, allow_duplicates: bool = False) -> EnqueueResult:
        """Queue ``items`` in one transaction: all are stored or none.

        Unless ``allow_duplicates``, an item whose config hash matches a queued,
        running or succeeded experiment (or an earlier item) is skipped and reported.
        """
        with cyclic_gc_paused():
            return self._enqueue(items, allow_duplicates)

    def _enqueue(self, items: Sequence[NewExperiment], allow_duplicates: bool) -> EnqueueResult:
        for item in items:
            # Here as well as in the CLI: every client's names reach the same VARCHAR(200) column.
            check_name(item.name)
            for tag in item.tags:
                check_tag(tag)
        # Hashing serialises the config: do it once per item, not once per use.
        hashed = [(item, item.config.hash) for item in items]
        with self._tx(write=True) as conn:
            skipped: list[Skipped] = []
            keep = hashed
            if not allow_duplicates:
                if conn.dialect.name == "postgresql":
                    # Under READ COMMITTED two enqueues would both find no copy and both insert.
                    # One lock for every checked enqueue, not one per config hash: a 100,000-point
                    # sweep would need 100,000 locks in one transaction, past PostgreSQL's shared
                    # lock table (max_locks_per_transaction x connections, 6,400 by default). Enqueues
                    # are short and rare, SQLite already runs them one at a time, and claims,
                    # heartbeats and --allow-duplicates never wait for this lock. Taken before the
                    # check: each statement's snapshot then sees the rows the previous holder committed.
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_ENQUEUE_LOCK})
                existing = self._duplicates(conn, [h for _, h in hashed])
                seen: set[str] = set()
                keep = []
                for item, h in hashed:
                    if h in existing:
                        skipped.append(Skipped(item.name, h, *existing[h]))
                    elif h in seen:
                        skipped.append(Skipped(item.name, h, None, None))
                    else:
                        seen.add(h)
                        keep.append((item, h))
            if not keep:
                return EnqueueResult([], skipped)
            # Values shared by every row are bound once in the statement, not once per row.
            shared = {"status": "queued", "queued_at": utcnow(), "attempts": 0, "fence": 0,
                      "cancel_requested": False, "step": 0}
            files_json: dict[tuple[PluginFile, ...], JSONText] = {}  # a sweep shares a few distinct sets
            for item, _ in keep:
                if item.plugin_files not in files_json:
                    files_json[item.plugin_files] = JSONText(json.dumps([f.to_dict() for f in item.plugin_files]))
            rows = [
                {
                    "name": item.name,
                    "architecture": item.config.architecture,
                    "dataset": item.config.dataset,
                    "loss": item.config.loss,
                    "config": JSONText(item.config.to_json()),
                    "config_hash": h,
                    "priority": int(item.priority),
                    "total_steps": int(item.config.train.get("steps", 0)),
                    "plugin_files": files_json[item.plugin_files],
                }
                for item, h in keep
            ]
            ids = self._insert_experiments(conn, rows, shared)
            tag_rows = [{"experiment_id": i, "tag": t} for i, (item, _) in zip(ids, keep) for t in dict.fromkeys(item.tags)]
            if tag_rows:
                conn.execute(insert(ExperimentTag.__table__), tag_rows)
            return EnqueueResult([(i, item.name) for i, (item, _) in zip(ids, keep)], skipped)

    @staticmethod
    def _insert_experiments(conn: Connection, rows: list[dict[str, Any]], shared: dict[str, Any]) -> list[int]:
        """Insert ``rows``, each completed by ``shared``; their ids, in the order given."""
        table = Experiment.__table__
        if conn.dialect.name != "sqlite":
            # Multi-row INSERT ... RETURNING in batches (insertmanyvalues), ids in parameter order.
            stmt = insert(table).values(**shared).returning(table.c.id, sort_by_parameter_order=True)
            return list(conn.execute(stmt, rows).scalars())
        # SQLite cannot promise RETURNING order for a multi-row INSERT, so SQLAlchemy would
        # fall back to one statement per row (10k round trips for a 10k sweep). This write
        # transaction holds the database lock (BEGIN IMMEDIATE) and SQLite numbers each new row
        # max(id) + 1, so one executemany yields consecutive ids; the count below proves it.
        before = conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
        # The DBAPI's executemany on plain tuples: SQLAlchemy's per-row parameter handling
        # would cost more than the insert itself. The varying columns are strings and ints
        # (the config already JSON text); the shared values go through their column types once.
        varying = list(rows[0])
        fixed = [_bind_value(table.c[k].type, v, conn.dialect) for k, v in shared.items()]
        names = ", ".join(varying + list(shared))
        marks = ", ".join("?" * (len(varying) + len(shared)))
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})",
                             [(*(row[k] for k in varying), *fixed) for row in rows])
        after = conn.execute(select(func.max(table.c.id), func.count()).where(table.c.id > before)).one()
        if tuple(after) != (before + len(rows), len(rows)):
            raise StoreError(f"queueing {len(rows)} experiments produced ids {before + 1}..{after[0]} "
                             f"({after[1]} rows); nothing was queued, try again")
        return list(range(before + 1, before + 1 + len(rows)))

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
            for part in _chunks(unique):
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
            for part in _chunks(running):
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
            for part in _chunks(unique):
                for exp_id, run_dir in conn.execute(
                    select(Experiment.id, Experiment.run_dir).where(Experiment.id.in_(part))
                ):
                    run_dirs[exp_id] = run_dir
            return [(i, run_dirs[i]) for i in unique]

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
            for part in _chunks(unique):
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
    def register_worker(self, worker_id: str, *, host: str | None = None, pid: int | None = None, gpus: str = "") -> WorkerRecord:
        """Record a worker as running (again, if the id was seen before)."""
        now = utcnow()
        values = {"host": host or socket.gethostname(), "pid": pid if pid is not None else os.getpid(), "gpus": gpus,
                  "started_at": now, "heartbeat_at": now, "status": "running"}
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


__all__ = [
    "DUPLICATE_STATUSES", "EnqueueResult", "ExperimentRecord", "ExperimentSummary", "FINAL_STATUSES",
    "NewExperiment", "RETRYABLE", "STATUSES", "Skipped", "Store", "TRANSITIONS", "WorkerRecord",
    "check_name", "check_tag", "utcnow",
]
