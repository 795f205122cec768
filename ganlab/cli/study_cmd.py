"""``ganlab study list`` and ``ganlab study show NAME``: what each search tried and what it found."""

from __future__ import annotations

import click

from ganlab.cli.db_option import db_option, open_db
from ganlab.cli.output import print_json, print_table
from ganlab.names import check_name, printable
from ganlab.search.results import best_trial, status_text, trial_dict
from ganlab.store.lifecycle import STATUSES
from ganlab.store.storage import Store


@click.group()
@db_option
def study() -> None:
    """Searches (studies) in the experiment database: their trials and best results."""


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts.get(s))


def _value(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


@study.command("list")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool) -> None:
    """Every study: how it samples and prunes, its trials by status."""
    with open_db(ctx, Store, read_only=True) as store:
        found = store.studies()
    if as_json:
        print_json([{**s.to_dict(), "statuses": counts} for s, counts in found])
        return
    if not found:
        click.echo("no studies yet (queue one: ganlab queue add --search tpe --trials N ...; see docs/search.md)")
        return
    print_table(["study", "search", "prune", "objective", "trials", "status"],
                [(s.name, s.sampler, s.pruner, s.objective, s.trials, _counts(c)) for s, c in found])


@study.command("show")
@db_option
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: the study, its best trial and every trial.")
@click.pass_context
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """A study's best trial and its config, and every trial: drawn values, objective, how it ended."""
    check_name(name, what="study name")
    with open_db(ctx, Store, read_only=True) as store:
        found, trials = store.study(name)
    best = best_trial(found, trials)
    if as_json:
        print_json({
            **found.to_dict(),
            "best": trial_dict(found, *best, best) | {"config": best[0].config} if best else None,
            "trials": [trial_dict(found, rec, row, best) for rec, row in trials],
        })
        return
    def echo(text: str) -> None:
        # Study, experiment and parameter names and run dirs are stored data: printed as text.
        click.echo(printable(text))

    counts: dict[str, int] = {}
    for rec, _ in trials:
        counts[rec.status] = counts.get(rec.status, 0) + 1
    echo(f"study {found.name}: {found.sampler} search, pruner {found.pruner}, objective {found.objective} "
               f"({found.direction}); {len(trials)} trial(s): {_counts(counts)}")
    keys = list(dict.fromkeys(k for _, row in trials for k in (row.params or {})))
    rows = []
    for rec, row in trials:
        mark = "*" if best is not None and best[0].id == rec.id else ""
        params = row.params or {}
        rows.append((f"{row.trial}{mark}", rec.id, *(_param(params.get(k)) for k in keys), _value(row.value),
                     status_text(rec), f"{rec.step}/{rec.total_steps}"))
    print_table(["trial", "id", *keys, found.objective, "status", "steps"], rows)
    if best is None:
        echo("best: none yet (no trial has finished)")
        return
    rec, row = best
    echo(f"best: trial {row.trial} (experiment {rec.id}, {rec.name}), {found.objective} {_value(row.value)}")
    drawn = ", ".join(f"{k}={_param(v)}" for k, v in (row.params or {}).items())
    if drawn:
        echo(f"  drawn values: {drawn}")
    echo(f"  config: ganlab queue show {rec.id}   run dir: {rec.run_dir or '-'}")


def _param(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else "" if value is None else str(value)


__all__ = ["study"]
