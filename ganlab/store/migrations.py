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

from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import insert, text
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


# Version 1 is the first schema.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(2, "experiments.plugin_files: the local plugin files and their SHA-256 at enqueue", _add_plugin_files),
    Migration(3, "workers.slurm_job_id, workers.slurm_task: the SLURM job and array task a worker runs as",
              _add_slurm_ids),
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
