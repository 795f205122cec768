"""``ganlab report``: the selected runs as one self-contained HTML file (table, curves, samples)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ganlab.cli.compare_cmd import NOTHING_MATCHES, selection_options
from ganlab.cli.db_option import db_option, db_url, open_db
from ganlab.cli.output import console
from ganlab.errors import ConfigError
from ganlab.store.storage import Store
from ganlab.store.urls import db_hint


@click.command("report")
@db_option
@selection_options
@click.option("-o", "--output", "output", default="report.html", show_default=True,
              type=click.Path(dir_okay=True, path_type=Path), help="The HTML file to write.")
@click.option("--columns", default=None, metavar="KEY,KEY",
              help="Hyperparameter columns, e.g. loss,train.lr_g, or 'all' (default: those that differ, "
                   "less the settings a plugin's defaults explain).")
@click.option("--sort", "sort_by", default=None, metavar="METRIC", help="Order of the rows, best first by this metric.")
@click.option("--objective", default=None, metavar="METRIC",
              help="The metric the parallel-coordinates plot colours runs by (default fd).")
@click.option("--title", default="ganlab report", show_default=True, help="The page's title.")
@click.pass_context
def report(ctx: click.Context, ids: tuple[int, ...], tags: tuple[str, ...], statuses: tuple[str, ...], output: Path,
           columns: str | None, sort_by: str | None, objective: str | None, title: str) -> None:
    """Write one self-contained HTML page about the selected runs.

    A sortable, filterable table (the settings that differ, metrics with their
    floors, status, steps, wall time), each metric's curves against step and
    wall time, every run's samples side by side, and the hyperparameters
    against the objective. Opens offline: every script and image is inline.
    IDS, --tag and --status select runs as in ganlab compare.
    """
    # plotly and the readers load only here: every other command starts without them.
    from ganlab.report.collect import collect
    from ganlab.report.write import build, check_output, write

    path = check_output(output)
    with open_db(ctx, Store, read_only=True) as store:
        with Progress(TextColumn("reading runs"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console(), transient=True) as bar:
            task = bar.add_task("runs", total=None)
            runs = collect(store, ids, tags, statuses, progress=lambda done, total: bar.update(task, completed=done,
                                                                                                total=total))
    if not runs:
        raise ConfigError(NOTHING_MATCHES.format(db=db_hint(db_url(ctx))) + "; no report written")
    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    with console().status(f"writing the report of {len(runs)} run(s)"):
        size = write(build(runs, columns=cols, objective_name=objective, sort_by=sort_by, title=title), path)
    click.echo(f"wrote {path} ({len(runs)} run(s), {size / 1e6:.1f} MB); open it in a browser, no network needed")
