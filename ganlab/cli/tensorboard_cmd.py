"""``ganlab tensorboard``: open every run (or a chosen subset) in TensorBoard with one command."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import click

from ganlab.cli.db_option import db_option, db_url, open_db
from ganlab.cli.output import warn
from ganlab.cli.types import ExperimentId
from ganlab.compare.select import select_records
from ganlab.errors import ConfigError, GanlabError
from ganlab.store.lifecycle import STATUSES
from ganlab.store.storage import Store
from ganlab.store.urls import db_hint
from ganlab.tblog.launcher import TensorBoard, check_port_free, free_port, link_subset, start_tensorboard


@click.command("tensorboard")
@db_option
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="The runs root (used when no --id/--tag/--status narrows it).")
@click.option("--host", default="127.0.0.1", show_default=True, metavar="ADDRESS", help="Address to bind; 0.0.0.0 exposes it to the network.")
@click.option("--port", type=click.IntRange(1, 65535), default=None, metavar="PORT", help="Port (default: a free one).")
@click.option("--id", "ids", type=ExperimentId, multiple=True, metavar="ID", help="Only this experiment (repeatable).")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Only experiments with this tag (repeatable: any of them).")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES),
              help="Only experiments in this status (repeatable).")
@click.pass_context
def tensorboard(ctx: click.Context, runs_dir: str, host: str, port: int | None, ids: tuple[int, ...],
                tags: tuple[str, ...], statuses: tuple[str, ...]) -> None:
    """Start TensorBoard on the runs and print its URL; Ctrl-C stops it.

    With --id/--tag/--status, only those experiments' runs are shown (their run
    directories are read from the database). The HParams tab lists every run
    with its hyperparameters, final metrics and status.
    """
    subset = None
    if ids or tags or statuses:
        subset = _selected_runs(ctx, ids, tags, statuses)
    else:
        logdir = Path(runs_dir)
        if not logdir.is_dir():
            raise ConfigError(f"runs dir {str(logdir)!r} does not exist; run experiments first (ganlab worker) or pass --runs-dir")
    # Checked before anything is created: a bad --host or --port leaves nothing behind.
    if port is None:
        port = free_port(host)
    else:
        check_port_free(host, port)
    cleanup: tuple[Path, ...] = ()
    if subset is not None:
        logdir = link_subset(subset)
        cleanup = (logdir,)
    server = start_tensorboard(logdir, host, port, cleanup=cleanup)
    shown = f"{len(subset)} run(s)" if subset is not None else str(logdir)
    click.echo(f"TensorBoard serving {shown} at {server.url} (HParams: {server.url}#hparams); Ctrl-C stops it")
    _serve(server)


def _serve(server: TensorBoard) -> None:
    """Wait until Ctrl-C or SIGTERM (then stop TensorBoard) or until TensorBoard ends by itself."""

    def on_term(signum: int, frame: FrameType | None) -> None:
        # SIGTERM would otherwise end this process at once and leave TensorBoard running.
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        try:
            code = server.process.wait()
        except KeyboardInterrupt:
            return
        why = server.last_log_line() or "no output"  # read before stop() removes the log
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()
    raise GanlabError(f"TensorBoard exited with code {code}: {why}")


def _selected_runs(ctx: click.Context, ids: tuple[int, ...], tags: tuple[str, ...],
                   statuses: tuple[str, ...]) -> dict[str, Path]:
    """Run name -> run directory of each chosen experiment that has one on this machine."""
    with open_db(ctx, Store, read_only=True) as store:
        # Queued experiments are included only on request (they have no run dir until claimed).
        records = select_records(store, ids, tags, statuses, default_statuses=[s for s in STATUSES if s != "queued"])
    running = [r for r in records if r.status == "running"]
    if running:
        # TensorBoard keeps the first status it reads per run (see ganlab.tblog.writer).
        warn(f"{len(running)} selected experiment(s) still running; the HParams status shows 'running' "
             "until TensorBoard is restarted after they end")
    runs: dict[str, Path] = {}
    for r in records:
        if r.run_dir and Path(r.run_dir).is_dir():
            runs[f"{r.id:04d}-{r.name}"] = Path(r.run_dir)
        elif r.run_dir:
            warn(f"#{r.id} {r.name}: run dir {r.run_dir} is not on this machine (it ran on {r.run_host or 'another host'})")
    if not runs:
        raise ConfigError("no run directories match (queued experiments have none yet); "
                          f"see: ganlab queue list{db_hint(db_url(ctx))}")
    return runs
