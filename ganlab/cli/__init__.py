"""The ``ganlab`` command: a click group whose subcommands live one module per group."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from ganlab import __version__
from ganlab.errors import GanlabError
from ganlab.registry import PLUGINS_DIR_ENV, Registry, load_plugins


class GanlabGroup(click.Group):
    """Turns the project's own errors into one-line messages (no traceback for user mistakes)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GanlabError as exc:
            raise click.ClickException(str(exc)) from None


class State:
    """Shared options of the top-level group, handed to subcommands via ``ctx.obj``."""

    def __init__(self, plugins_dir: str | None) -> None:
        self.plugins_dir = plugins_dir

    def registry(self) -> Registry:
        return load_plugins(self.plugins_dir)


@click.group(cls=GanlabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--plugins-dir",
    type=click.Path(file_okay=False),
    default=None,
    help=f"Folder of local plugin files (default ./plugins; env {PLUGINS_DIR_ENV}).",
)
@click.version_option(__version__, prog_name="ganlab")
@click.pass_context
def cli(ctx: click.Context, plugins_dir: str | None) -> None:
    """Plugin-based GAN experiments: queue sweeps, run them, compare them."""
    ctx.obj = State(plugins_dir or os.environ.get(PLUGINS_DIR_ENV) or None)


def _register_commands() -> None:
    from ganlab.cli import db_cmd, plugins_cmd, queue_cmd

    cli.add_command(plugins_cmd.plugins)
    cli.add_command(queue_cmd.queue)
    cli.add_command(db_cmd.db)

    from ganlab.cli import sample_cmd, train_cmd

    cli.add_command(train_cmd.train)
    cli.add_command(sample_cmd.sample)

    from ganlab.cli import compare_cmd, demo_cmd, tensorboard_cmd, worker_cmd

    cli.add_command(worker_cmd.worker)
    cli.add_command(worker_cmd.status)
    cli.add_command(worker_cmd.logs)
    cli.add_command(compare_cmd.compare)
    cli.add_command(tensorboard_cmd.tensorboard)
    cli.add_command(demo_cmd.demo)


_register_commands()


def main() -> None:
    cli(prog_name="ganlab")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
