"""``ganlab plugins``: what is installed, where it came from, and what it accepts."""

from __future__ import annotations

import click

from ganlab.cli.output import print_json, print_table, warn
from ganlab.cli.plugins_author_cmd import check as check_cmd
from ganlab.cli.plugins_author_cmd import new as new_cmd
from ganlab.errors import PluginError
from ganlab.params import suggest
from ganlab.registry import KINDS, Registry
from ganlab.specs import MetricSpec


def _report_problems(registry: Registry) -> None:
    for problem in registry.problems:
        warn(problem.message)
    for message in registry.clash_messages():
        warn(message)


@click.group(invoke_without_command=True)
@click.option("--kind", type=click.Choice(list(KINDS)), help="Only plugins of this kind.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def plugins(ctx: click.Context, kind: str | None, as_json: bool) -> None:
    """List architectures, datasets, losses, augmentations and metrics: kind, name, source, description."""
    if ctx.invoked_subcommand is not None:
        return
    registry = ctx.obj.registry()
    entries = registry.entries(kind)
    if as_json:
        print_json([e.to_dict() for e in entries])
    else:
        print_table(
            ["kind", "name", "source", "description"],
            [(e.kind, e.name, e.source, e.spec.description) for e in entries],
        )
    _report_problems(registry)


@plugins.command("show")
@click.argument("name")
@click.option("--kind", type=click.Choice(list(KINDS)), help="Which kind, when NAME is used by several.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def show(ctx: click.Context, name: str, kind: str | None, as_json: bool) -> None:
    """Show one plugin's hyperparameters (type, default, allowed values) and reference."""
    registry = ctx.obj.registry()
    if kind is not None:
        registry.get(kind, name)
        found = [e for e in registry.entries(kind) if e.name == name]
    else:
        found = registry.find(name)
        if not found:
            problem = registry.problem_for(name)
            if problem is not None:
                raise PluginError(problem.message)
            all_names = sorted({e.name for e in registry.entries()})
            raise PluginError(f"no plugin named {name!r}{suggest(name, all_names)} (run 'ganlab plugins' to list them)")
    if as_json:
        print_json([e.to_dict() for e in found])
        return
    for entry in found:
        spec = entry.spec
        click.echo(f"{entry.kind} {entry.name}  ({entry.source})")
        click.echo(f"  {spec.description}")
        if spec.reference:
            click.echo(f"  reference: {spec.reference}")
        if isinstance(spec, MetricSpec):
            better = "lower" if spec.lower_is_better else "higher"
            click.echo(f"  reports: {', '.join(spec.outputs)} ({better} is better), version {spec.version}")
            click.echo(f"  features: {spec.features.name} ({spec.features.description})")
            click.echo(f"  needs at least {spec.min_samples} samples (train.eval_samples)")
        if getattr(spec, "conditional", False):
            click.echo("  class-conditional: needs a labelled dataset")
        defaults = getattr(spec, "defaults", None)
        if defaults is not None:
            click.echo(
                f"  recommended: n_critic={defaults.n_critic} lr_g={defaults.lr_g:g} lr_d={defaults.lr_d:g} "
                f"beta_1={defaults.beta_1:g} beta_2={defaults.beta_2:g}"
            )
        if spec.params:
            print_table(
                ["hyperparameter", "type", "default", "allowed", "help"],
                [
                    (p.name, p.type_name, "(required)" if p.required and p.default is None else repr(p.default),
                     p.describe_range(), p.help)
                    for p in spec.params
                ],
            )
        else:
            click.echo("  no hyperparameters")


plugins.add_command(new_cmd)
plugins.add_command(check_cmd)
