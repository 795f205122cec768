"""Where the experiment database lives and how to connect to it.

Everything dialect-specific is here: URL handling (a bare path means SQLite),
SQLite's connection set-up (WAL, busy timeout, ``BEGIN IMMEDIATE`` for
writes), the schema-version check, and turning driver errors into one-line
:class:`~ganlab.errors.StoreError` messages. Other commands (worker, status,
compare) open the database through :func:`open_engine` the same way.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: SQLite's busy handler alone queues the writers
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import Engine, create_engine, event, func, inspect, select, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from ganlab.errors import DatabaseMissing, DatabaseUnreachable, SchemaMismatch, StoreError
from ganlab.store.migrations import MIGRATIONS, Migration, apply_migrations
from ganlab.store.models import SCHEMA_VERSION, Base, SchemaVersion

DB_ENV = "GANLAB_DB"
DEFAULT_URL = "sqlite:///experiments.db"
# Seconds a writer waits for another's lock before SQLite gives up. Long, because
# giving up loses the caller's change; claims hold the lock for about a millisecond.
BUSY_TIMEOUT_S = 60.0
# Execution option that makes a transaction take SQLite's write lock at BEGIN.
WRITE_OPTION = "ganlab_write"
_PG_CREATE_LOCK = 0x67616E6C  # advisory-lock key serialising schema creation on PostgreSQL


def resolve_url(db: str | None = None) -> str:
    """The database URL: ``db`` (``--db``), else ``$GANLAB_DB``, else ``sqlite:///experiments.db``.

    A value without ``://`` is a file path and means SQLite.
    """
    value = (db or os.environ.get(DB_ENV) or DEFAULT_URL).strip()
    if "://" not in value:
        return f"sqlite:///{value}"
    return value


def parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise StoreError(
            f"--db {masked_url(url)!r} is not a database URL; give a file path, sqlite:///FILE or "
            "postgresql+psycopg://USER@HOST/DB"
        ) from None


# scheme://user:PASSWORD@host...: the password runs to the last "@" (an unparsable URL may hold a raw "@" in it).
_PASSWORD = re.compile(r"^(?P<head>[^/@]*://[^:/@]*):(?P<password>.*)@", re.DOTALL)


def masked_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages about a URL that may not even parse."""
    return _PASSWORD.sub(lambda m: f"{m['head']}:***@", url, count=1)


def sqlite_path(url: str) -> Path | None:
    """The file behind an SQLite URL, or None (another dialect, or in memory)."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def display_url(url: str) -> str:
    """How messages name the database: the file for SQLite, the URL without password otherwise."""
    path = sqlite_path(url)
    if path is not None:
        return str(path)
    return parse_url(url).render_as_string(hide_password=True)


def db_hint(url: str) -> str:
    """``--db X`` to repeat in a suggested command, empty for the default database."""
    return "" if url == DEFAULT_URL else f" --db {display_url(url)}"


def make_engine(url: str) -> Engine:
    """An engine with the project's connection set-up; connects lazily."""
    parsed = parse_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(parsed, json_serializer=json_dumps, connect_args={"timeout": BUSY_TIMEOUT_S})
            _configure_sqlite(engine)
        elif parsed.get_backend_name() == "postgresql":
            # UTC sessions: timestamps come back in UTC whatever the server's time zone.
            engine = create_engine(
                parsed,
                pool_pre_ping=True,
                json_serializer=json_dumps,
                connect_args={"options": "-c timezone=UTC", "connect_timeout": 10},
            )
        else:
            engine = create_engine(parsed, pool_pre_ping=True, json_serializer=json_dumps)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise StoreError(
            f"--db {display_url(url)}: no driver for {parsed.drivername!r} ({exc}); use sqlite:///FILE or "
            "postgresql+psycopg://USER@HOST/DB (pip install 'ganlab[postgres]')"
        ) from None
    return engine


class JSONText(str):
    """A JSON document its owner has already serialised; JSON columns store it as is.

    A sweep's configs are serialised once, for their hash; serialising each
    again for its column would double the cost of queueing.
    """


def json_dumps(value: Any) -> str:
    """The engines' JSON serialiser: passes :class:`JSONText` through."""
    return str(value) if isinstance(value, JSONText) else json.dumps(value)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        # SQLAlchemy, not the sqlite3 module, emits BEGIN (see _on_begin).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            # WAL lets readers (list, status) run while a worker writes. Setting it
            # takes a lock, so only the first connection to a new file does so.
            if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cur.execute("PRAGMA journal_mode = WAL")
            # NORMAL is durable across process crashes in WAL mode; only a power cut
            # can lose the last commits, and it avoids an fsync on every heartbeat.
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.execute("PRAGMA foreign_keys = ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that reads and then writes cannot wait for the
        # lock (SQLite fails it at once with "database is locked"), so every
        # write transaction takes the lock up front and waits its turn instead.
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class WriteGate:
    """Queues this host's writers to one SQLite file on an OS file lock (``FILE-lock``).

    SQLite makes a writer that finds the database locked sleep and retry, up
    to 100 ms at a time, so under contention a claim can wait hundreds of
    milliseconds while the lock sits free. A blocking ``flock`` is handed to
    the next waiter as soon as it is released, and the releaser yields its
    CPU so that waiter gets it before the releaser's own next write. SQLite's
    own locking still guarantees correctness (other tools, a folder where the
    lock file cannot be created); the gate only removes the idle waiting.
    """

    def __init__(self, db_path: Path | None) -> None:
        self._path = Path(f"{db_path}-lock") if db_path is not None and fcntl is not None else None
        self._fd: int | None = None
        self._local = threading.RLock()
        self._depth = 0

    @contextmanager
    def hold(self) -> Iterator[None]:
        with self._local:  # threads of one process share the file descriptor, so they queue here
            fd = self._open() if self._depth == 0 else None
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    # Let a woken waiter run before this process comes back for its next write:
                    # otherwise the releaser, still on the CPU, usually re-takes the lock first,
                    # and on a busy host some claims wait behind many others (benchmark p99: 24 -> 12-15 ms).
                    os.sched_yield()

    def _open(self) -> int | None:
        if self._path is None:
            return None
        if self._fd is None:
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError:
                self._path = None  # read-only folder: rely on SQLite's busy handler
                return None
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def translate_error(exc: DBAPIError, url: str) -> StoreError:
    """One line for a driver error, naming the database and what to do."""
    where = display_url(url)
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    low = first.lower()
    if "file is not a database" in low or "file is encrypted" in low or "malformed" in low:
        return StoreError(
            f"{where} is not an SQLite database ({first}); point --db at an experiments database, "
            "or move the file away and queue something to start a new one"
        )
    if "database is locked" in low or "database is busy" in low:
        return StoreError(
            f"{where} stayed locked by another process for {BUSY_TIMEOUT_S:g}s; check for a hung ganlab process "
            "and try again"
        )
    if "unable to open database" in low or "readonly database" in low or "read-only" in low:
        return StoreError(f"cannot write {where} ({first}); check the path and its permissions")
    if exc.connection_invalidated or "connection" in low or "could not" in low:
        return DatabaseUnreachable(f"cannot reach database {where} ({first}); check the server is running and --db/{DB_ENV}")
    return StoreError(f"database error on {where}: {first}")


def missing_message(url: str, detail: str) -> str:
    return (
        f"no experiments database at {display_url(url)} ({detail}); queue something to create it: "
        f"ganlab queue{db_hint(url)} add --arch ... (or point --db/{DB_ENV} at an existing one)"
    )


def open_engine(
    url: str,
    *,
    create: bool = False,
    expected_version: int = SCHEMA_VERSION,
) -> Engine:
    """Connect and check the schema version; create the tables if ``create`` and the database is empty.

    Raises StoreError for a missing (when not ``create``), corrupt or foreign
    database, and SchemaMismatch naming the fix for another schema version.
    """
    path = sqlite_path(url)
    if path is not None and not path.exists():
        if not create:
            raise DatabaseMissing(missing_message(url, "no such file"))
        if not path.parent.is_dir():
            raise StoreError(f"cannot create {path}: folder {path.parent} does not exist; create it first")
    engine = make_engine(url)
    try:
        with engine.connect().execution_options(**{WRITE_OPTION: create}) as conn, conn.begin():
            if create and conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_CREATE_LOCK})
            version = read_version(conn)
            if version is None:
                if not create:
                    raise DatabaseMissing(missing_message(url, "the database has no ganlab tables yet"))
                Base.metadata.create_all(conn)
                conn.execute(
                    SchemaVersion.__table__.insert().values(
                        version=expected_version, description="initial schema", applied_at=datetime.now(timezone.utc)
                    )
                )
                version = expected_version
    except DBAPIError as exc:
        engine.dispose()
        raise translate_error(exc, url) from exc
    except BaseException:
        engine.dispose()
        raise
    if version != expected_version:
        engine.dispose()
        raise mismatch(url, version, expected_version)
    return engine


def read_version(conn: Connection) -> int | None:
    """The schema version recorded in the database; None when it has no tables at all.

    Raises StoreError for a database holding other tables but no ganlab schema.
    """
    names = set(inspect(conn).get_table_names())
    if SchemaVersion.__tablename__ not in names:
        if names:
            shown = ", ".join(sorted(names)[:5])
            raise StoreError(
                f"{display_url(str(conn.engine.url))} is not a ganlab experiments database (it has tables {shown}); "
                f"point --db/{DB_ENV} at another file"
            )
        return None
    version = conn.scalar(select(func.max(SchemaVersion.version)))
    return int(version) if version is not None else 0


def mismatch(url: str, found: int, expected: int) -> SchemaMismatch:
    if found < expected:
        return SchemaMismatch(
            f"{display_url(url)} uses schema version {found} but this ganlab needs version {expected}; "
            f"upgrade it with: ganlab db upgrade{db_hint(url)}"
        )
    return SchemaMismatch(
        f"{display_url(url)} was written by a newer ganlab (schema version {found}; this one knows up to "
        f"{expected}); upgrade ganlab: pip install -U ganlab"
    )


def upgrade(
    url: str,
    *,
    migrations: tuple[Migration, ...] = MIGRATIONS,
    target: int = SCHEMA_VERSION,
) -> tuple[int, int]:
    """Apply the pending migrations in one transaction; return (version before, version after)."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise DatabaseMissing(missing_message(url, "no such file, nothing to upgrade"))
    engine = make_engine(url)
    try:
        with engine.connect().execution_options(**{WRITE_OPTION: True}) as conn, conn.begin():
            before = read_version(conn)
            if before is None:
                raise DatabaseMissing(missing_message(url, "the database has no ganlab tables, nothing to upgrade"))
            if before > target:
                raise mismatch(url, before, target)
            apply_migrations(conn, before, target, migrations)
    except DBAPIError as exc:
        raise translate_error(exc, url) from exc
    finally:
        engine.dispose()
    return before, target
