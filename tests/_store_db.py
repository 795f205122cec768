"""Database fixtures for the store tests: a fresh SQLite file, and a fresh PostgreSQL database when a server is up."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def _pg_admin():  # type: ignore[no-untyped-def]
    try:
        import psycopg
    except ImportError as exc:
        pytest.skip(f"POSTGRESQL VARIANT NOT RUN: psycopg is not installed ({exc}); pip install 'ganlab[postgres]'")
    try:
        return psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        pytest.skip(f"POSTGRESQL VARIANT NOT RUN: no server at 127.0.0.1:5432 ({first})")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database of each dialect; the PostgreSQL one is created and dropped here."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'experiments.db'}"
        return
    yield from fresh_pg_database()


def fresh_pg_database(prefix: str = "ganlab_test") -> Iterator[str]:
    """For a fixture: the URL of a new, empty PostgreSQL database, dropped afterwards (skips when no server runs)."""
    admin = _pg_admin()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.format(name=name)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def sqlite_snapshot(path: Path) -> str | None:
    """Every row of an SQLite file as SQL text (None if there is no file), to prove nothing changed."""
    if not path.exists():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


# The tables as ganlab's first schema wrote them (SQLite): upgrades are tested from the oldest database.
V1_STATUS_CHECK = "status IN ('queued', 'running', 'succeeded', 'failed', 'diverged', 'cancelled')"
V1_SCHEMA = f"""
CREATE TABLE experiments (
    id INTEGER NOT NULL, name VARCHAR(200) NOT NULL, architecture VARCHAR(100) NOT NULL,
    dataset VARCHAR(100) NOT NULL, loss VARCHAR(100) NOT NULL, config JSON NOT NULL,
    config_hash VARCHAR(64) NOT NULL, priority INTEGER NOT NULL, status VARCHAR(16) NOT NULL,
    queued_at DATETIME NOT NULL, started_at DATETIME, finished_at DATETIME, attempts INTEGER NOT NULL,
    worker_id VARCHAR(200), worker_host VARCHAR(200), worker_pid INTEGER, lease_expires_at DATETIME,
    fence INTEGER NOT NULL, cancel_requested BOOLEAN NOT NULL, step INTEGER NOT NULL, total_steps INTEGER NOT NULL,
    heartbeat_at DATETIME, last_losses JSON, metrics JSON, error TEXT, run_dir TEXT, run_host VARCHAR(200),
    PRIMARY KEY (id),
    CONSTRAINT ck_experiments_status CHECK ({V1_STATUS_CHECK})
);
CREATE TABLE experiment_tags (
    experiment_id INTEGER NOT NULL, tag VARCHAR(100) NOT NULL, PRIMARY KEY (experiment_id, tag),
    FOREIGN KEY(experiment_id) REFERENCES experiments (id) ON DELETE CASCADE
);
CREATE TABLE ganlab_schema (
    version INTEGER NOT NULL, description VARCHAR(200) NOT NULL, applied_at DATETIME NOT NULL, PRIMARY KEY (version)
);
CREATE TABLE workers (
    worker_id VARCHAR(200) NOT NULL, host VARCHAR(200) NOT NULL, pid INTEGER NOT NULL, gpus TEXT NOT NULL,
    started_at DATETIME NOT NULL, heartbeat_at DATETIME NOT NULL, status VARCHAR(16) NOT NULL, PRIMARY KEY (worker_id),
    CONSTRAINT ck_workers_status CHECK (status IN ('running', 'stopped'))
);
CREATE INDEX ix_experiments_claim ON experiments (status, priority, id);
CREATE INDEX ix_experiments_config_hash ON experiments (config_hash);
CREATE INDEX ix_experiment_tags_tag ON experiment_tags (tag);
INSERT INTO ganlab_schema VALUES (1, 'initial schema', '2026-01-05 10:00:00.000000+00:00');
"""
