"""Which database ``--db`` names: resolving, checking and showing its URL (a bare path means SQLite).

Messages name the database through :func:`display_url`, never with its password.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from urllib.parse import parse_qs

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ganlab.errors import StoreError

DB_ENV = "GANLAB_DB"
DEFAULT_URL = "sqlite:///experiments.db"


def resolve_url(db: str | None = None) -> str:
    """The database URL: ``db`` (``--db``), else ``$GANLAB_DB``, else ``sqlite:///experiments.db``.

    A value without ``://`` is a file path and means SQLite. Blank values count
    as not given; see :func:`check_url` for what is refused.
    """
    value = (db or "").strip() or (os.environ.get(DB_ENV) or "").strip() or DEFAULT_URL
    if "://" not in value:
        return f"sqlite:///{value}"
    return value


def parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number, an unclosed [IPv6 address
        raise StoreError(
            f"--db {masked_url(url)!r} is not a database URL; give a file path, sqlite:///FILE or "
            "postgresql+psycopg://USER@HOST/DB"
        ) from None


# scheme://user:PASSWORD@host...: the password runs to the last "@" (an unparsable URL may hold a raw "@" in it).
_PASSWORD = re.compile(r"^(?P<head>[^/@]*://[^:/@]*):(?P<password>.*)@", re.DOTALL)


def masked_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages about a URL that may not even parse."""
    return _PASSWORD.sub(lambda m: f"{m['head']}:***@", url, count=1)


def check_url(url: str) -> str:
    """``url`` if it names a database ganlab can keep experiments in; StoreError (one line) otherwise.

    Refuses what cannot be parsed, control characters (they would split the
    one-line messages that name the database) and in-memory SQLite databases,
    which would report success and throw the experiments away on exit.
    """
    if any(ord(c) < 32 or ord(c) == 127 for c in url):
        # Not echoed: the value may hold a password, and it cannot be parsed to mask one.
        raise StoreError("--db contains a control character (a newline, tab or escape); give a file path or a database URL")
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite" and _in_memory(parsed):
        raise StoreError(
            f"--db {url} is an in-memory SQLite database: whatever is queued would vanish when the command "
            "ends; give a file path, e.g. --db experiments.db"
        )
    return url


def _in_memory(parsed: URL) -> bool:
    database = parsed.database or ""
    if database in ("", ":memory:"):
        return True
    if not database.startswith("file:"):
        return False
    name, _, query = database[len("file:"):].partition("?")
    modes = set(parse_qs(query).get("mode", [])) | {str(parsed.query.get("mode", ""))}
    return name in ("", ":memory:") or "memory" in modes


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
    """``--db X`` to repeat in a suggested command (quoted for a shell), empty for the default database."""
    return "" if url == DEFAULT_URL else f" --db {shlex.quote(display_url(url))}"

