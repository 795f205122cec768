"""``ganlab settings``: every training setting (``--set train.KEY=...``) with its type, default and range.

Plugins' own hyperparameters are listed by ``ganlab plugins show NAME``; the
training loop's are declared in :func:`ganlab.config.train_params`, and the
optimiser defaults among them come from the loss.
"""

from __future__ import annotations

import click

from ganlab.cli.output import print_json, print_table
from ganlab.config import train_params

# Settings whose default is the loss's recommendation (LossSpec.defaults), not a constant.
_FROM_LOSS = {"n_critic", "lr_g", "lr_d", "beta_1", "beta_2"}


@click.command("settings")
@click.option("--loss", "loss", default=None, metavar="NAME",
              help="Show the defaults this loss recommends for the optimiser settings.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def settings(ctx: click.Context, loss: str | None, as_json: bool) -> None:
    """List the training settings: name, type, default, allowed values, meaning.

    Set them with --set train.NAME=VALUE (or NAME=VALUE where no plugin has a
    hyperparameter of that name) on 'ganlab queue add' and 'ganlab train'.
    """
    spec = ctx.obj.registry().get("loss", loss) if loss is not None else None
    params = train_params(spec)
    if as_json:
        print_json([{**p.to_dict(), "from_loss": p.name in _FROM_LOSS} for p in params])
        return
    rows = []
    for p in params:
        # Without --loss the optimiser defaults shown are the generic ones; the loss may recommend others.
        mark = " *" if p.name in _FROM_LOSS and spec is None else ""
        rows.append((p.name, p.type_name, repr(p.default) + mark, p.describe_range(), p.help))
    print_table(["setting", "type", "default", "allowed", "meaning"], rows,
                title=f"training settings (defaults for loss {loss})" if loss else "training settings")
    if spec is None:
        click.echo("* unless the loss recommends another value: ganlab settings --loss NAME shows its defaults.")
