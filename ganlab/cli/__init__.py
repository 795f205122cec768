"""The ``ganlab`` command: a click group whose subcommands live one module per group."""

from __future__ import annotations

import sys
from typing import Any

import click

from ganlab import __version__
from ganlab.errors import ConfigError, GanlabError
from ganlab.names import printable
from ganlab.plugin_files import absolute, check_folder
from ganlab.registry import PLUGINS_DIR_ENV, Registry, load_plugins, resolve_plugins_dir
from ganlab.training.report import exit_code


class GanlabGroup(click.Group):
    """Turns the project's own errors into one-line messages (no traceback for user mistakes)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GanlabError as exc:
            # Messages may quote stored values (paths, names): their control characters print as text.
            error = click.ClickException(printable(str(exc)))
            error.exit_code = exit_code(exc)  # e.g. a run dir another process trains: 6
            raise error from None


class State:
    """Shared options of the top-level group, handed to subcommands via ``ctx.obj``.

    ``plugins_dir``: as given (None: ``$GANLAB_PLUGINS_DIR`` or ``./plugins``; ``""``: none).
    """

    def __init__(self, plugins_dir: str | None, *, local: bool = True) -> None:
        self.plugins_dir = plugins_dir
        self.local = local

    def registry(self) -> Registry:
        return load_plugins(self.plugins_dir if self.local else "")

    def worker_plugins_dir(self, *, local: bool = True) -> str | None:
        """The absolute plugins folder a worker's children may load recorded files from; None: no local files.

        Checked now, so a worker with an unsafe folder stops at once rather than failing every experiment.
        """
        if not (local and self.local):
            return None
        directory = resolve_plugins_dir(self.plugins_dir)
        if directory is None:
            return None
        check_folder(directory)
        return str(absolute(directory))


@click.group(cls=GanlabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--plugins-dir",
    type=click.Path(file_okay=False),
    default=None,
    help=f"Folder of local plugin files (default ./plugins; env {PLUGINS_DIR_ENV}); '' loads none.",
)
@click.option("--no-local-plugins", is_flag=True, help="Load no local plugin files (only built-in and installed plugins).")
@click.version_option(__version__, prog_name="ganlab")
@click.pass_context
def cli(ctx: click.Context, plugins_dir: str | None, no_local_plugins: bool) -> None:
    """Plugin-based GAN experiments: queue sweeps, run them, compare them."""
    if no_local_plugins and plugins_dir:
        raise ConfigError(f"--no-local-plugins and --plugins-dir {plugins_dir} contradict each other; give one of them")
    ctx.obj = State(plugins_dir, local=not no_local_plugins)


def _register_commands() -> None:
    from ganlab.cli import db_cmd, plugins_cmd, queue_cmd

    cli.add_command(plugins_cmd.plugins)
    cli.add_command(queue_cmd.queue)
    cli.add_command(db_cmd.db)

    from ganlab.cli import sample_cmd, train_cmd

    cli.add_command(train_cmd.train)
    cli.add_command(sample_cmd.sample)

    from ganlab.cli import compare_cmd, demo_cmd, logs_cmd, report_cmd, settings_cmd, tensorboard_cmd, worker_cmd

    cli.add_command(worker_cmd.worker)
    cli.add_command(worker_cmd.status)
    cli.add_command(logs_cmd.logs)
    cli.add_command(compare_cmd.compare)
    cli.add_command(report_cmd.report)
    cli.add_command(tensorboard_cmd.tensorboard)
    cli.add_command(demo_cmd.demo)
    cli.add_command(settings_cmd.settings)

    from ganlab.cli import study_cmd

    cli.add_command(study_cmd.study)

    from ganlab.cli import slurm_cmd

    cli.add_command(slurm_cmd.slurm)


_register_commands()


def main() -> None:
    cli(prog_name="ganlab")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
