"""How to connect to the experiment database and check what it holds.

Everything dialect-specific is here: SQLite's connection set-up (WAL, busy
timeout, ``BEGIN IMMEDIATE`` for writes), the schema-version check, and
turning driver errors into one-line :class:`~ganlab.errors.StoreError`
messages. Other commands (worker, status, compare) open the database through
:func:`open_engine` the same way. Which database ``--db`` names is
``urls.py``'s job; queueing this host's SQLite writers is ``write_gate.py``'s.
"""

from __future__ import annotations

import errno
import json
import os
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event, func, inspect, select, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError, NoSuchModuleError

from ganlab.errors import DatabaseMissing, DatabaseUnreachable, SchemaMismatch, StoreError, first_line
from ganlab.store.migrations import MIGRATIONS, Migration, apply_migrations
from ganlab.store.models import SCHEMA_VERSION, Base, SchemaVersion
from ganlab.store.urls import DB_ENV, check_url, db_hint, display_url, parse_url, sqlite_path

# Seconds a writer waits for another's lock before SQLite gives up. Long, because
# giving up loses the caller's change; claims hold the lock for about a millisecond.
BUSY_TIMEOUT_S = 60.0
# Execution option that makes a transaction take SQLite's write lock at BEGIN.
WRITE_OPTION = "ganlab_write"
_PG_CREATE_LOCK = 0x67616E6C  # advisory-lock key serialising schema creation on PostgreSQL


def _exists(path: Path, url: str) -> bool:
    """Whether the database file exists; StoreError (one line) for a path the system cannot even look up."""
    try:
        return path.exists()
    except (OSError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:
            raise StoreError(
                f"--db path is too long ({len(str(path))} characters; the system allows 4096, and 255 per name); "
                "give a shorter path"
            ) from None
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StoreError(f"cannot use --db {display_url(url)}: {why}") from None


def make_engine(url: str, *, read_only: bool = False, sqlite_open: str = "") -> Engine:
    """An engine with the project's connection set-up; connects lazily.

    ``read_only``: never change the file's set-up (see :func:`open_engine`).
    ``sqlite_open``: ``"ro"`` or ``"immutable"`` opens an SQLite file through a
    URI in that mode, for a database this user cannot write.
    """
    parsed = parse_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            if sqlite_open:
                parsed = _read_only_uri(parsed, immutable=sqlite_open == "immutable")
            engine = create_engine(parsed, json_serializer=json_dumps, connect_args={"timeout": BUSY_TIMEOUT_S})
            _configure_sqlite(engine, read_only=read_only)
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


def _read_only_uri(parsed: URL, *, immutable: bool) -> URL:
    """The SQLite URI that opens ``parsed``'s file read-only (``immutable``: also without the -shm/-wal files)."""
    path = os.path.abspath(parsed.database or "")
    query = {"mode": "ro", "uri": "true"}
    if immutable:
        query["immutable"] = "1"
    return URL.create("sqlite", database="file:" + quote(path, safe="/"), query=query)


class JSONText(str):
    """A JSON document its owner has already serialised; JSON columns store it as is.

    A sweep's configs are serialised once, for their hash; serialising each
    again for its column would double the cost of queueing.
    """


def json_dumps(value: Any) -> str:
    """The engines' JSON serialiser: passes :class:`JSONText` through."""
    return str(value) if isinstance(value, JSONText) else json.dumps(value)


def _configure_sqlite(engine: Engine, *, read_only: bool = False) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        # SQLAlchemy, not the sqlite3 module, emits BEGIN (see _on_begin).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            # WAL lets readers (list, status) run while a worker writes. Setting it
            # takes a lock, so only the first connection to a new file does so; a
            # read-only command leaves the file as it found it.
            if not read_only and cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
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


def translate_error(exc: DBAPIError, url: str) -> StoreError:
    """One line for a driver error, naming the database and what to do."""
    where = display_url(url)
    orig = getattr(exc, "orig", None) or exc
    first = first_line(orig)
    low = first.lower()
    if "file is not a database" in low or "file is encrypted" in low:
        return StoreError(
            f"{where} is not an SQLite database ({first}); point --db at an experiments database, "
            "or move the file away and queue something to start a new one"
        )
    if "malformed" in low:
        return StoreError(damaged_message(url, first))
    if "database is locked" in low or "database is busy" in low:
        return StoreError(
            f"{where} stayed locked by another process for {BUSY_TIMEOUT_S:g}s; check for a hung ganlab process "
            "and try again"
        )
    if _cannot_write(low):
        return StoreError(f"cannot write {where} ({first}); check the path and its permissions")
    if exc.connection_invalidated or "connection" in low or "could not" in low:
        return DatabaseUnreachable(f"cannot reach database {where} ({first}); check the server is running and --db/{DB_ENV}")
    return StoreError(f"database error on {where}: {first}")


def _cannot_write(message: str) -> bool:
    low = message.lower()
    return "unable to open database" in low or "readonly database" in low or "read-only" in low


def damaged_message(url: str, detail: str) -> str:
    path = sqlite_path(url)
    rescue = f", or save what is readable with: sqlite3 {shlex.quote(str(path))} .recover" if path is not None else ""
    return f"{display_url(url)} is damaged ({detail}); nothing was changed; restore it from a backup{rescue}"


def missing_message(url: str, detail: str) -> str:
    return (
        f"no experiments database at {display_url(url)} ({detail}); queue something to create it: "
        f"ganlab queue add{db_hint(url)} (or point --db/{DB_ENV} at an existing one)"
    )


def open_engine(
    url: str,
    *,
    create: bool = False,
    read_only: bool = False,
    expected_version: int = SCHEMA_VERSION,
) -> Engine:
    """Connect and check the schema version; create the tables if ``create`` and the database is empty.

    ``read_only`` (commands that only read): the file is never changed, and an
    SQLite file this user cannot write (its folder or the file read-only) is
    still read: through SQLite's ``immutable`` mode, which needs no -shm file,
    when no -wal file holds changes; else through ``mode=ro``, which reads the
    live database through the -shm file its writer keeps.

    Raises StoreError for a missing (when not ``create``), corrupt or foreign
    database, and SchemaMismatch naming the fix for another schema version.
    """
    check_url(url)
    path = sqlite_path(url)
    if path is not None and not _exists(path, url):
        if not create:
            raise DatabaseMissing(missing_message(url, "no such file"))
        if not path.parent.is_dir():
            raise StoreError(f"cannot create {path}: folder {path.parent} does not exist; create it first")
    if read_only and path is not None and not _writable(path):
        engine, version = _open_unwritable(url, path, expected_version)
        return _checked(engine, url, version, expected_version)
    engine = make_engine(url, read_only=read_only)
    try:
        version = _schema_version(engine, url, create=create, expected_version=expected_version)
    except DBAPIError as exc:
        engine.dispose()
        if not (read_only and path is not None and _cannot_write(str(exc.orig))):
            raise translate_error(exc, url) from exc
        # os.access can say yes where writing fails (a read-only mount seen as root, ACLs).
        engine, version = _open_unwritable(url, path, expected_version)
    except BaseException:
        engine.dispose()
        raise
    return _checked(engine, url, version, expected_version)


def _checked(engine: Engine, url: str, version: int, expected_version: int) -> Engine:
    if version != expected_version:
        engine.dispose()
        raise mismatch(url, version, expected_version)
    return engine


def check_writable(url: str) -> None:
    """StoreError (one line) if this user cannot write the SQLite file ``url`` names, or create it.

    For commands that write: refused before SQLite tries, a write leaves
    -wal/-shm files behind even when it fails.
    """
    path = sqlite_path(check_url(url))
    if path is None or not _exists(path, url) and not path.parent.is_dir():
        return  # not SQLite, or open_engine names the missing folder
    part = _unwritable_part(path)
    if part is not None:
        raise StoreError(f"cannot write {display_url(url)}: {part} is read-only for you; check the path and its permissions")


def _writable(path: Path) -> bool:
    """Whether this user may write the file (if it exists) and create its -wal/-shm files beside it."""
    return _unwritable_part(path) is None


def _unwritable_part(path: Path) -> str | None:
    if path.exists() and not os.access(path, os.W_OK):
        return "the file"
    if not os.access(path.parent, os.W_OK):
        return f"its folder {path.parent}"
    return None


def _schema_version(engine: Engine, url: str, *, create: bool, expected_version: int) -> int:
    with engine.connect().execution_options(**{WRITE_OPTION: create}) as conn, conn.begin():
        if create and conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_CREATE_LOCK})
        version = read_version(conn, url)
        if version is None:
            if not create:
                raise DatabaseMissing(missing_message(url, "the database has no ganlab tables yet"))
            Base.metadata.create_all(conn)
            conn.execute(
                SchemaVersion.__table__.insert().values(
                    version=expected_version, description="initial schema", applied_at=datetime.now(UTC)
                )
            )
            version = expected_version
    return version


def _open_unwritable(url: str, path: Path, expected_version: int) -> tuple[Engine, int]:
    """Open an SQLite file this user may read but not write; see :func:`open_engine`."""
    wal = Path(f"{path}-wal")
    try:
        pending = wal.exists() and wal.stat().st_size > 0
    except OSError:
        pending = True
    # immutable reads the main file alone, creating nothing: right while no -wal holds newer
    # commits. With one, mode=ro reads them through the -shm index that its writer keeps.
    engine = make_engine(url, read_only=True, sqlite_open="ro" if pending else "immutable")
    try:
        return engine, _schema_version(engine, url, create=False, expected_version=expected_version)
    except DBAPIError as exc:
        engine.dispose()
        if not _cannot_write(str(exc.orig)):
            raise translate_error(exc, url) from exc
        first = first_line(exc.orig)
        raise StoreError(
            f"cannot read {display_url(url)} ({first}): it is not writable for you and {wal.name} holds changes "
            "not yet written into it; try again once no worker has it open, or ask its owner to make the "
            "folder writable for you"
        ) from None
    except BaseException:
        engine.dispose()
        raise


def read_version(conn: Connection, url: str | None = None) -> int | None:
    """The schema version recorded in the database; None when it has no tables at all.

    Raises StoreError for a database holding other tables but no ganlab schema.
    """
    names = set(inspect(conn).get_table_names())
    if SchemaVersion.__tablename__ not in names:
        if names:
            shown = ", ".join(sorted(names)[:5])
            where = display_url(url) if url is not None else display_url(str(conn.engine.url))
            raise StoreError(
                f"{where} is not a ganlab experiments database (it has tables {shown}); "
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


def check_integrity(conn: Connection, url: str) -> None:
    """StoreError naming the first problem if SQLite's ``quick_check`` finds the file damaged (no-op elsewhere)."""
    if conn.dialect.name != "sqlite":
        return
    # A row can span lines ("*** in database main ***\nPage 5: ..."): one line per problem.
    problems = [" ".join(str(row[0]).replace("*** in database main ***", "").split())
                for row in conn.exec_driver_sql("PRAGMA quick_check")]
    if problems != ["ok"]:
        more = f" and {len(problems) - 1} more problem(s)" if len(problems) > 1 else ""
        raise StoreError(damaged_message(url, f"quick_check: {problems[0]}{more}"))


def upgrade(
    url: str,
    *,
    migrations: tuple[Migration, ...] = MIGRATIONS,
    target: int = SCHEMA_VERSION,
) -> tuple[int, int]:
    """Check the file, then apply the pending migrations in one transaction; return (version before, after).

    A damaged SQLite file is refused: migrating it could spread the damage,
    and "nothing to upgrade" would wrongly vouch for it.
    """
    check_url(url)
    path = sqlite_path(url)
    if path is not None and not _exists(path, url):
        raise DatabaseMissing(missing_message(url, "no such file, nothing to upgrade"))
    engine = make_engine(url)
    try:
        with engine.connect().execution_options(**{WRITE_OPTION: True}) as conn, conn.begin():
            check_integrity(conn, url)
            before = read_version(conn, url)
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
