"""The ``--db`` option every command that touches the database shares, and opening what it names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from ganlab.errors import StoreError
from ganlab.store.database import check_writable, open_engine
from ganlab.store.storage import Store
from ganlab.store.urls import DB_ENV, check_url, resolve_url

F = TypeVar("F", bound=Callable[..., Any])
S = TypeVar("S", bound=Store)
_META_KEY = "ganlab.db_url"


def db_option(func: F) -> F:
    """``--db URL|PATH`` (env GANLAB_DB) for a command or group; read it back with :func:`db_url`.

    Put it on a group and on each of its commands: ``ganlab queue --db X add``
    and ``ganlab queue add --db X`` both work, and the one nearest the command
    wins. The value is checked as it is parsed, before the command runs.
    """

    def remember(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value is None:
            return
        typed = ctx.get_parameter_source(param.name or "db") is ParameterSource.COMMANDLINE
        if typed and not value.strip():
            # An unset shell variable ("--db $DB"): the default database is probably not what was meant.
            raise StoreError("--db is empty; give a file path or a database URL, or leave --db out for ./experiments.db")
        url = check_url(resolve_url(value))
        # ctx.meta is shared by the group's and the command's contexts. Only a value typed on
        # the command line is stored: GANLAB_DB, seen again by the inner option, must not
        # override an explicit --db given to the group.
        if typed:
            ctx.meta[_META_KEY] = url

    return click.option(
        "--db",
        envvar=DB_ENV,
        show_envvar=True,
        metavar="URL|PATH",
        default=None,
        expose_value=False,
        callback=remember,
        help="Experiment database: an SQLAlchemy URL or a file path (SQLite). Default ./experiments.db.",
    )(func)


def db_url(ctx: click.Context) -> str:
    """The database URL chosen by the nearest ``--db``, else GANLAB_DB, else the default."""
    return ctx.meta.get(_META_KEY) or check_url(resolve_url(None))


def open_db(
    ctx: click.Context, kind: type[S] = Store, *, read_only: bool = False, create: bool = False  # type: ignore[assignment]
) -> S:
    """Open the chosen database as ``kind`` (Store or Queue).

    ``read_only``: for commands that only read (list, show, status, compare...):
    they never change the file and still work where it cannot be written (a
    read-only folder or file, see :func:`ganlab.store.database.open_engine`).
    """
    url = db_url(ctx)
    if not read_only:
        check_writable(url)
    return kind(open_engine(url, create=create, read_only=read_only), url)
