"""``ganlab queue extend``: more steps for finished runs, resumed in their own run dir."""

from __future__ import annotations

import click

from ganlab.cli.db_option import db_option, open_db
from ganlab.cli.types import Count, ExperimentId
from ganlab.names import printable
from ganlab.store.storage import Store


@click.command("extend")
@db_option
@click.argument("ids", metavar="ID...", nargs=-1, type=ExperimentId, required=True)
@click.option("--steps", type=Count, required=True,
              help="The new total step budget (like queue add --steps); more than the current one.")
@click.pass_context
def extend(ctx: click.Context, ids: tuple[int, ...], steps: int) -> None:
    """Give succeeded, pruned or stopped experiments more steps and queue them again.

    The worker resumes each from its latest checkpoint in the same run
    directory: the step counter and the TensorBoard curves continue. All or
    nothing: one experiment that cannot be extended changes none.
    """
    with open_db(ctx, Store) as store:
        extended = store.extend(list(ids), steps)
    for e in extended:
        where = f" from step {e.step} in {printable(e.run_dir)}" if e.run_dir else ""
        click.echo(f"extended {e.id} from {e.old_steps} to {e.steps} steps; queued, resumes{where}")
