"""``ganlab db``: maintenance of the experiment database, plus the shared ``--db`` option."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ganlab.store.database import DB_ENV, display_url, resolve_url, upgrade

F = TypeVar("F", bound=Callable[..., Any])
_META_KEY = "ganlab.db_url"


def db_option(func: F) -> F:
    """``--db URL|PATH`` (env GANLAB_DB) for a command group; read it back with :func:`db_url`."""

    def remember(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
        url = resolve_url(value)
        ctx.meta[_META_KEY] = url
        return url

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
    """The database URL chosen by the nearest ``--db`` (or the default)."""
    return ctx.meta.get(_META_KEY) or resolve_url(None)


@click.group()
@db_option
def db() -> None:
    """Maintain the experiment database."""


@db.command("upgrade")
@click.pass_context
def upgrade_cmd(ctx: click.Context) -> None:
    """Bring the database's schema up to this ganlab's version (one transaction)."""
    url = db_url(ctx)
    before, after = upgrade(url)
    if before == after:
        click.echo(f"{display_url(url)} is at schema version {after}: nothing to upgrade")
    else:
        click.echo(f"upgraded {display_url(url)} from schema version {before} to {after}")
