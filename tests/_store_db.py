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
