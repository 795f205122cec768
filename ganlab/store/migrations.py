"""Numbered schema migrations.

A new database is created from ``models.py`` at the current
:data:`~ganlab.store.models.SCHEMA_VERSION`. A database written by an older
ganlab is brought forward by ``ganlab db upgrade``, which runs every step
above its recorded version, in order, in one transaction, and records each
in the ``ganlab_schema`` table.

To change a table: edit ``models.py``, bump ``SCHEMA_VERSION``, and append
``Migration(version, "what changed", fn)`` here, where ``fn(conn)`` issues the
DDL (``ALTER TABLE ...``) with plain SQL that works on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import JSON, CheckConstraint, Column, Float, ForeignKey, Integer, MetaData, String, Table, insert, text
from sqlalchemy.engine import Connection

from ganlab.errors import SchemaMismatch


class Migration(NamedTuple):
    """The step that brings a database from ``version - 1`` to ``version``."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _add_plugin_files(conn: Connection) -> None:
    # Existing rows keep NULL: their plugin files were never recorded, so workers run them with none.
    conn.execute(text("ALTER TABLE experiments ADD COLUMN plugin_files JSON"))


def _add_slurm_ids(conn: Connection) -> None:
    # Workers seen before keep NULL: they did not run as SLURM jobs, or nobody recorded it.
    conn.execute(text("ALTER TABLE workers ADD COLUMN slurm_job_id VARCHAR(32)"))
    conn.execute(text("ALTER TABLE workers ADD COLUMN slurm_task INTEGER"))


# Version 4's statuses, spelled out here (not read from lifecycle.py) so this step keeps
# writing what version 4 means after later versions add more.
_STATUSES_4 = ("queued", "running", "succeeded", "failed", "diverged", "cancelled", "pruned", "stopped")
_STATUS_CHECK_4 = "status IN ({})".format(", ".join(f"'{s}'" for s in _STATUSES_4))


def _search_tables_4(metadata: MetaData) -> tuple[Table, Table]:
    # A frozen copy of the two tables as version 4 has them (models.py may move on).
    from ganlab.store.models import UTCDateTime

    Table("experiments", metadata, Column("id", Integer, primary_key=True))  # only for the foreign key; exists
    studies = Table(
        "studies", metadata,
        Column("id", Integer, primary_key=True),
        Column("name", String(200), nullable=False, unique=True),
        Column("objective", String(100), nullable=False),
        Column("direction", String(8), nullable=False),
        Column("sampler", String(16), nullable=False),
        Column("pruner", String(16), nullable=False),
        Column("trials", Integer, nullable=False),
        Column("space", JSON, nullable=False),
        Column("seed", Integer, nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
        CheckConstraint("direction IN ('minimize', 'maximize')", name="ck_studies_direction"),
    )
    values = Table(
        "trial_values", metadata,
        Column("experiment_id", Integer, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True),
        Column("step", Integer, primary_key=True, autoincrement=False),
        Column("value", Float, nullable=False),
    )
    return studies, values


def _widen_status_check(conn: Connection) -> None:
    if conn.dialect.name != "sqlite":
        conn.execute(text("ALTER TABLE experiments DROP CONSTRAINT ck_experiments_status"))
        conn.execute(text(f"ALTER TABLE experiments ADD CONSTRAINT ck_experiments_status CHECK ({_STATUS_CHECK_4})"))
        return
    # SQLite cannot alter a constraint, and rebuilding the table would fire the tags' ON DELETE
    # CASCADE (foreign keys are on, and cannot be turned off inside this transaction). Widening a
    # CHECK changes no stored row, so SQLite's documented route for it applies: rewrite the table's
    # schema text and bump the schema cookie so every connection re-reads it.
    sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'experiments'").scalar()
    widened, found = re.subn(
        r"CONSTRAINT ck_experiments_status CHECK \(status IN \([^)]*\)\)",
        f"CONSTRAINT ck_experiments_status CHECK ({_STATUS_CHECK_4})", sql or "",
    )
    if found != 1:
        raise RuntimeError("the experiments table's status constraint is not where ganlab wrote it; not upgrading")
    cookie = conn.exec_driver_sql("PRAGMA schema_version").scalar()
    conn.exec_driver_sql("PRAGMA writable_schema = ON")
    conn.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'experiments'", (widened,)
    )
    conn.exec_driver_sql(f"PRAGMA schema_version = {int(cookie) + 1}")
    conn.exec_driver_sql("PRAGMA writable_schema = OFF")


def _add_search_and_stops(conn: Connection) -> None:
    # Tables first: experiments.study_id refers to studies.
    metadata = MetaData()
    for table in _search_tables_4(metadata):
        table.create(conn)
    for ddl in (
        "ALTER TABLE experiments ADD COLUMN stop_reason TEXT",
        "ALTER TABLE experiments ADD COLUMN study_id INTEGER REFERENCES studies (id) ON DELETE SET NULL",
        "ALTER TABLE experiments ADD COLUMN trial INTEGER",
        "ALTER TABLE experiments ADD COLUMN pack_key VARCHAR(64)",
        "CREATE INDEX ix_experiments_study_id ON experiments (study_id)",
        "CREATE INDEX ix_experiments_pack_key ON experiments (pack_key)",
    ):
        conn.execute(text(ddl))
    _widen_status_check(conn)


# Version 1 is the first schema.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(2, "experiments.plugin_files: the local plugin files and their SHA-256 at enqueue", _add_plugin_files),
    Migration(3, "workers.slurm_job_id, workers.slurm_task: the SLURM job and array task a worker runs as",
              _add_slurm_ids),
    Migration(4, "statuses pruned and stopped, experiments.stop_reason/study_id/trial/pack_key, "
                 "tables studies and trial_values (search, GAN-aware stops, packed seeds)", _add_search_and_stops),
)


def apply_migrations(conn: Connection, current: int, target: int, migrations: tuple[Migration, ...]) -> list[int]:
    """Run the steps from ``current`` to ``target`` on ``conn`` (inside the caller's transaction)."""
    from ganlab.store.models import SchemaVersion

    steps = {m.version: m for m in migrations}
    applied: list[int] = []
    for version in range(current + 1, target + 1):
        step = steps.get(version)
        if step is None:
            raise SchemaMismatch(
                f"no migration from schema version {version - 1} to {version} in this ganlab; "
                "recreate the database or use the ganlab release that wrote it"
            )
        step.apply(conn)
        conn.execute(
            insert(SchemaVersion).values(
                version=version, description=step.description, applied_at=datetime.now(UTC)
            )
        )
        applied.append(version)
    return applied
