"""``ganlab db``: maintenance of the experiment database."""

from __future__ import annotations

import click

from ganlab.cli.db_option import db_option, db_url
from ganlab.store.database import check_writable, upgrade
from ganlab.store.urls import display_url


@click.group()
@db_option
def db() -> None:
    """Maintain the experiment database."""


@db.command("upgrade")
@db_option
@click.pass_context
def upgrade_cmd(ctx: click.Context) -> None:
    """Check the database and bring its schema up to this ganlab's version (one transaction)."""
    url = db_url(ctx)
    check_writable(url)
    before, after = upgrade(url)
    if before == after:
        click.echo(f"{display_url(url)} is at schema version {after}: nothing to upgrade")
    else:
        click.echo(f"upgraded {display_url(url)} from schema version {before} to {after}")
