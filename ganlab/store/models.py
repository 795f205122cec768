"""Tables of the experiment database (tables only: state changes live in storage.py and queue.py).

Bump :data:`SCHEMA_VERSION` and add a step to ``migrations.py`` whenever a
table here changes shape.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from ganlab.store.lifecycle import STATUSES

SCHEMA_VERSION = 4

WORKER_STATUSES = ("running", "stopped")
DIRECTIONS = ("minimize", "maximize")


# SQLite keeps datetimes as text; writing the offset makes fromisoformat() return aware
# UTC values directly, and the fixed width keeps text comparison (lease expiry) correct.
_SQLITE_UTC = "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d+00:00"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    Values are converted to UTC when written; they come back aware without a
    per-row Python step (listing 100,000 rows reads 300,000 of them): SQLite
    parses the stored offset, PostgreSQL returns ``timestamptz`` in the
    session's UTC time zone (set in ``database.make_engine``).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sqlite.DATETIME(storage_format=_SQLITE_UTC))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the experiment store; use datetime.now(timezone.utc)")
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """Now, as the tables store it (aware, UTC)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), str: String(200)}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class SchemaVersion(Base):
    """One row per applied schema version (numbered migrations); the highest is current."""

    __tablename__ = "ganlab_schema"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    description: Mapped[str]
    applied_at: Mapped[datetime]


class Experiment(Base):
    """One queued experiment: its resolved config, lifecycle, current claim and results."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str]
    architecture: Mapped[str] = mapped_column(String(100))
    dataset: Mapped[str] = mapped_column(String(100))
    loss: Mapped[str] = mapped_column(String(100))
    config: Mapped[dict[str, Any]]
    config_hash: Mapped[str] = mapped_column(String(64), index=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    queued_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The current claim. ``fence`` grows by one on every claim and is never reset,
    # so a worker whose lease was taken over holds a stale token and is refused.
    worker_id: Mapped[str | None]
    worker_host: Mapped[str | None]
    worker_pid: Mapped[int | None] = mapped_column(Integer)
    lease_expires_at: Mapped[datetime | None]
    fence: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # Progress, written by heartbeats.
    step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int] = mapped_column(Integer, default=0)
    heartbeat_at: Mapped[datetime | None]
    last_losses: Mapped[dict[str, Any] | None]
    # Outcome.
    metrics: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    run_dir: Mapped[str | None] = mapped_column(Text)
    run_host: Mapped[str | None]
    # The local plugin files the experiment uses, as queued: [{kind, name, path, sha256}]. A worker
    # runs only these, and only unchanged. NULL: queued before schema 2, when nothing was recorded.
    plugin_files: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # Why a run ended ``stopped`` (a GAN-aware stop) or ``pruned`` (a search's pruner), in words.
    stop_reason: Mapped[str | None] = mapped_column(Text)
    # A search trial: its study and its number there. Its sampled values go into ``config`` at claim time.
    study_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("studies.id", ondelete="SET NULL"), index=True)
    trial: Mapped[int | None] = mapped_column(Integer)
    # Seeds queued with ``--pack`` share this key; one worker child claims and trains them together.
    pack_key: Mapped[str | None] = mapped_column(String(64), index=True)

    __table_args__ = (
        CheckConstraint(_in("status", STATUSES), name="ck_experiments_status"),
        # The claim query: WHERE status = 'queued' ORDER BY priority DESC, id.
        Index("ix_experiments_claim", "status", "priority", "id"),
    )


class Study(Base):
    """A search: how its trials are sampled and pruned, and the objective they are judged on."""

    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    objective: Mapped[str] = mapped_column(String(100))
    direction: Mapped[str] = mapped_column(String(8))
    sampler: Mapped[str] = mapped_column(String(16))
    pruner: Mapped[str] = mapped_column(String(16))
    trials: Mapped[int] = mapped_column(Integer)
    space: Mapped[dict[str, Any]]
    seed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint(_in("direction", DIRECTIONS), name="ck_studies_direction"),
    )


class TrialValue(Base):
    """The objective at one evaluation of a trial, written by the worker under the trial's fence (the pruner's input)."""

    __tablename__ = "trial_values"

    experiment_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[float] = mapped_column(Float)


class ExperimentTag(Base):
    """A tag of an experiment (a table rather than a text column so tag filters stay dialect-neutral)."""

    __tablename__ = "experiment_tags"

    experiment_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


class Worker(Base):
    """A worker process, as last reported by itself."""

    __tablename__ = "workers"

    worker_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str]
    pid: Mapped[int] = mapped_column(Integer)
    gpus: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="running")
    # Set when the worker runs as a SLURM job: the array's job id (or the job's own) and the task index.
    slurm_job_id: Mapped[str | None] = mapped_column(String(32), nullable=True, default=None)
    slurm_task: Mapped[int | None] = mapped_column(Integer, nullable=True, default=None)

    __table_args__ = (CheckConstraint(_in("status", WORKER_STATUSES), name="ck_workers_status"),)
