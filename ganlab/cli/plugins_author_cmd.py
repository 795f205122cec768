"""``ganlab plugins new`` and ``ganlab plugins check``: start a plugin from a template, then check it."""

from __future__ import annotations

import os
import subprocess
import sys

import click

from ganlab.cli.output import print_json, print_table
from ganlab.config import BACKENDS
from ganlab.errors import GanlabError
from ganlab.registry import KINDS
from ganlab.sweep import parse_sets


@click.command("new")
@click.argument("name")
@click.option("--kind", required=True, metavar="KIND", help="architecture, dataset, loss, augmentation or metric.")
@click.pass_context
def new(ctx: click.Context, name: str, kind: str) -> None:
    """Write a commented, working plugin file NAME of KIND into the plugins folder (never overwrites)."""
    from ganlab.authoring import check_free, check_plugin_name, target_folder, template_source, write_plugin

    template_source(kind)  # an unknown kind is refused first, listing the kinds there are
    check_plugin_name(name)
    state = ctx.obj
    target_folder(state.plugins_dir, state.local, create=False)  # local plugins off, or a folder others can write
    registry = state.registry()
    check_free(kind, name, registry)  # before ./plugins is created: a refusal leaves nothing behind
    directory = target_folder(state.plugins_dir, state.local)
    path = write_plugin(kind, name, directory, registry)
    click.echo(f"wrote {path} ({kind} {name!r}); edit it, then run: ganlab plugins check {name}")


@click.command("check")
@click.argument("name")
@click.option("--kind", type=click.Choice(list(KINDS)), help="Which kind, when NAME is used by several.")
@click.option("--dataset", default=None, help="Dataset an architecture is built and trained for (default digits).")
@click.option("--loss", default=None, help="Loss of an architecture's training step (default non-saturating).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Hyperparameter or training setting. Repeatable.")
@click.option("--backend", type=click.Choice(BACKENDS), default="tensorflow", show_default=True,
              help="Keras backend of the training step (jax runs in a child process).")
@click.option("--grid", "grid_path", default=None, metavar="PATH.png", help="Where a dataset's sample grid goes (default: a new temp file).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option("--in-process", is_flag=True, hidden=True, help="Run here even for another backend (the child process).")
@click.pass_context
def check(ctx: click.Context, name: str, kind: str | None, dataset: str | None, loss: str | None,
          sets: tuple[str, ...], backend: str, grid_path: str | None, as_json: bool, in_process: bool) -> None:
    """Build, run and describe one plugin; exit 1 with one line on its first problem."""
    from ganlab.plugin_check import plugin_kind, run_check
    from ganlab.training.backend import imported_backend

    given = {k: v[0] for k, v in parse_sets(sets, lists=False).items()}
    registry = ctx.obj.registry()
    kind = plugin_kind(registry, name, kind)
    if not in_process and kind != "dataset" and (backend == "jax" or imported_backend() not in (None, backend)):
        # Keras picks its backend once per process: another backend needs a fresh one.
        ctx.exit(_in_child(ctx, backend))
    report = run_check(registry, name, kind, dataset=dataset, loss=loss, sets=given, backend=backend, grid_path=grid_path)
    if as_json:
        print_json(report.to_dict())
    else:
        for model in report.models:
            print_table(["layer", "type", "output shape", "params"], model.rows,
                        title=f"{model.name}: {model.params:,} parameters")
        for key, value in report.facts.items():
            click.echo(f"{key}: {value}")
    if report.problem is not None:
        if not as_json:
            raise GanlabError(report.problem)
        ctx.exit(1)
    if not as_json:
        click.echo(f"ok: {kind} {name!r} passed every check")


def _in_child(ctx: click.Context, backend: str) -> int:
    state = ctx.obj
    top = ["--no-local-plugins"] if not state.local else (
        ["--plugins-dir", state.plugins_dir] if state.plugins_dir is not None else [])
    args = _own_args(ctx)
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run([sys.executable, "-m", "ganlab", *top, "plugins", "check", *args, "--in-process"],
                          capture_output=True, text=True, env=env, check=False)
    if done.stdout:
        click.echo(done.stdout, nl=False)
    lines = done.stderr.splitlines()
    for line in lines:
        if line.startswith(("Error:", "warning:")):
            click.echo(line, err=True)
    if done.returncode != 0 and not done.stdout and not any(line.startswith("Error:") for line in lines):
        # The child died before it could report (say, the backend is not installed): its last line says why.
        raise GanlabError(f"the check on {backend} could not run: {(lines or ['no output'])[-1].strip()}")
    return done.returncode


def _own_args(ctx: click.Context) -> list[str]:
    """This command's arguments, rebuilt from what click parsed (the same in a test runner as on a shell)."""
    p = ctx.params
    args = [p["name"], "--backend", p["backend"]]
    for option in ("kind", "dataset", "loss", "grid_path"):
        if p[option] is not None:
            args += [f"--{option.replace('_path', '')}", p[option]]
    for item in p["sets"]:
        args += ["--set", item]
    if p["as_json"]:
        args.append("--json")
    return args
