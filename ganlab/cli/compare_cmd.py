"""``ganlab compare``: the runs side by side in the terminal, as JSON or as CSV.

Reads the experiment database only (no TensorFlow, no event files), so it
answers at once for thousands of experiments.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from ganlab.cli.db_option import db_option, db_url, open_db
from ganlab.cli.output import cell, console, print_json
from ganlab.cli.types import ExperimentId
from ganlab.compare.cards import card_groups
from ganlab.compare.fit import fit_widths, middle_ellipsis, table_width
from ganlab.compare.select import select_records
from ganlab.compare.table import (
    CARDS_KEY,
    RunRow,
    best_values,
    flat_metrics,
    follows_plugin,
    group_seeds,
    is_reference,
    metric_names,
    resolve_columns,
    sort_rows,
    table_metrics,
    to_records,
    varying_keys,
)
from ganlab.config import ExperimentConfig
from ganlab.names import check_name, printable
from ganlab.store.lifecycle import STATUSES
from ganlab.store.records import ExperimentRecord
from ganlab.store.storage import Store
from ganlab.store.urls import db_hint

BEST_STYLE = "bold green"
# Shortest a text column gets before columns are dropped: a row's name and status must stay readable.
_FLOORS = {"name": 12, "status": 12}
NOTHING_MATCHES = "no experiments match (try without --tag/--status, or see: ganlab queue list{db})"


def record_row(rec: ExperimentRecord, now: datetime | None = None) -> RunRow:
    """One database record as a comparison row (wall time of its last attempt; so far, for a running one)."""
    end = rec.finished_at
    if end is None and rec.status == "running":
        end = now or datetime.now(UTC)
    wall = (end - rec.started_at).total_seconds() if end and rec.started_at else None
    cards = (rec.metrics or {}).get(CARDS_KEY)
    return RunRow(
        id=rec.id, name=rec.name, status=rec.status, step=rec.step, total=rec.total_steps,
        hparams=ExperimentConfig.from_dict(rec.config).flat(), metrics=flat_metrics(rec.metrics), wall_s=wall,
        stop_reason=rec.stop_reason,
        cards={k: v for k, v in cards.items() if isinstance(v, dict)} if isinstance(cards, dict) else {},
    )


def load_rows(store: Store, ids: Sequence[int], tags: Sequence[str], statuses: Sequence[str]) -> list[RunRow]:
    """The selected experiments as rows (see :func:`ganlab.compare.select.select_records`)."""
    now = datetime.now(UTC)
    return [record_row(r, now) for r in select_records(store, ids, tags, statuses)]


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render(rows: list[RunRow], columns: list[str] | None, metrics: list[str], title: str | None = None) -> None:
    """Print the rows as a table that fits the terminal: the best value of each metric column in bold green.

    ``metrics`` may name every metric; the table keeps the scores (see
    :func:`ganlab.compare.table.table_metrics`). ``columns=None`` shows the
    settings that differ, less those a plugin column fixes (see
    :func:`ganlab.compare.table.follows_plugin`), named in the caption. Numbers are never cut or wrapped; names and settings end in an ellipsis
    when the terminal is too narrow for them.
    """
    folded: dict[str, str] = {}
    if columns is None:
        varying = varying_keys(rows)
        folded = follows_plugin(rows, varying)
        columns = [c for c in varying if c not in folded]
    shown = table_metrics(metrics)
    best = best_values(rows, shown)
    numeric = {"id", "steps", "wall", *shown}
    body: list[list[Text]] = []
    for r in rows:
        # Text cells, not markup strings: a name or value with "[...]" must print as it is.
        cells: list[Text] = [cell(r.id), cell(r.name), *(cell(_fmt(r.hparams.get(c))) for c in columns),
                             cell(r.shown_status), cell(f"{r.step}/{r.total}")]
        for m in shown:
            v = r.metrics.get(m)
            text = _fmt(v)
            if m in r.spread:
                text += f" ± {r.spread[m]:.2g}"
            # The best value per column is what a reader looks for first.
            cells.append(Text(text, style=BEST_STYLE if v is not None and best.get(m) == v else ""))
        cells.append(Text(_duration(r.wall_s)))
        body.append(cells)
    # "train." is most of a setting's header and says nothing: the plugins' settings keep their prefix.
    fixed = {"id", "name", "status", "steps", "wall", *shown}
    headers = ["id", "name", *(_short(c, fixed) for c in columns), "status", "steps", *shown, "wall"]
    widths, dropped = _layout(headers, body, numeric)
    # The title names a stored study: text, never markup or escape sequences.
    table = Table(title=cell(title) if title else None, caption=cell(_caption(rows, metrics, folded, dropped)), header_style="bold",
                  caption_justify="left", pad_edge=False)
    keep = [i for i, col in enumerate(headers) if col not in dropped]
    for i in keep:
        col = headers[i]
        if col in numeric:
            table.add_column(cell(col), justify="right", no_wrap=True, width=widths[i])
        else:
            table.add_column(cell(col), no_wrap=True, overflow="ellipsis", width=widths[i])
    name = headers.index("name")
    for cells in body:
        # Names differ at the end (the swept values): cut the middle, keep both ends.
        cells[name] = Text(middle_ellipsis(cells[name].plain, widths[name]))
        table.add_row(*(cells[i] for i in keep))
    out = console()
    # Wider than the terminal only when nothing else fits; then wrapped lines, never crushed numbers.
    out.width = max(out.width, table_width([widths[i] for i in keep]))
    out.print(table)


def _short(column: str, taken: set[str]) -> str:
    short = column.removeprefix("train.")
    return column if short in taken else short


def _layout(headers: list[str], body: list[list[Text]], numeric: set[str]) -> tuple[list[int], list[str]]:
    """Column widths for the terminal, and the best-value columns left out when short names are not enough.

    When even that does not fit (a very narrow terminal, ``--columns all``),
    text stays at its shortest and the table is wider than the terminal:
    lines wrap on screen, but no number is cut.
    """
    natural = [max([len(h), *(b[i].cell_len for b in body)]) for i, h in enumerate(headers)]
    # Numbers keep their width; text may shrink to a few characters, the name (what a row is) less so.
    # A setting's header says which setting it is: its values may be cut, its name is not.
    floors: list[int | None] = [None if h in numeric else min(natural[i], _FLOORS.get(h, max(len(h), 8)))
                                for i, h in enumerate(headers)]
    available = console().width
    dropped: list[str] = []
    # The final values stay; the bests (also in --json) give way first.
    optional = [h for h in headers if h.startswith("best_")]
    while True:
        keep = [i for i, h in enumerate(headers) if h not in dropped]
        fitted = fit_widths([natural[i] for i in keep], [floors[i] for i in keep], available)
        if fitted is None and len(dropped) < len(optional):
            dropped.append(optional[len(dropped)])
            continue
        if fitted is None:
            fitted = [natural[i] if floors[i] is None else floors[i] for i in keep]
        widths = dict(zip(keep, fitted, strict=True))
        return [widths.get(i, 0) for i in range(len(headers))], dropped


def _caption(rows: Sequence[RunRow], metrics: Sequence[str], folded: dict[str, str], dropped: Sequence[str]) -> str:
    parts = [f"{len(rows)} row(s); best value per metric in {BEST_STYLE}"]
    if dropped:
        parts.append(f"{', '.join(dropped)} left out to fit the terminal (--json shows every value)")
    by_plugin: dict[str, list[str]] = {}
    for key, plugin in folded.items():
        by_plugin.setdefault(plugin, []).append(key)
    for plugin, keys in by_plugin.items():
        parts.append(f"{', '.join(sorted(keys))} follow {plugin} (--columns all shows them)")
    # What a good score is: the real-vs-real floor, measured by each run with its own metric.
    scores = set(table_metrics(metrics))
    for name in metrics:
        if name.endswith("_floor") and name.removesuffix("_floor") in scores:
            values = sorted(r.metrics[name] for r in rows if isinstance(r.metrics.get(name), (int, float)))
            if values:
                span = _fmt(values[0]) if values[0] == values[-1] else f"{_fmt(values[0])}–{_fmt(values[-1])}"
                parts.append(f"{name.removesuffix('_floor')} of real vs real data (the floor): {span}")
    hidden = [m for m in metrics if is_reference(m)]
    if hidden:
        parts.append(f"{', '.join(hidden)} in --json/--csv")
    return "; ".join(parts)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _csv_value(value: Any) -> Any:
    # Member ids of a seed group: one cell, space-separated, rather than a Python list's repr.
    if isinstance(value, list):
        return ("; " if any(isinstance(v, str) for v in value) else " ").join(str(v) for v in value)
    # CSV often lands on a terminal: a stored name's escape sequence is written out, not sent.
    return printable(value) if isinstance(value, str) else value


def selection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """IDS, --tag and --status, as ``compare`` and ``report`` take them (see :func:`load_rows`)."""
    func = click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES),
                        help="Only experiments in this status (repeatable; default: all that have started).")(func)
    func = click.option("--tag", "tags", multiple=True, metavar="TAG",
                        help="Only experiments with this tag (repeatable: any of them).")(func)
    return click.argument("ids", nargs=-1, type=ExperimentId)(func)


@click.command("compare")
@db_option
@selection_options
@click.option("--sort", "sort_by", default=None, metavar="METRIC", help="Sort best first by this metric (e.g. fd).")
@click.option("--columns", default=None, metavar="KEY,KEY",
              help="Hyperparameter columns, e.g. loss,train.lr_g, or 'all' (default: those that differ, "
                   "less the settings a plugin's defaults explain).")
@click.option("--group-seeds", "by_seed", is_flag=True, help="One row per config over seeds: mean ± std of each metric.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (every metric, floors included).")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (every metric, floors included).")
@click.option("--study", "study_name", default=None, metavar="NAME",
              help="The trials of this study: drawn values, objective, how each ended; best first.")
@click.pass_context
def compare(ctx: click.Context, ids: tuple[int, ...], tags: tuple[str, ...], statuses: tuple[str, ...],
            sort_by: str | None, columns: str | None, by_seed: bool, as_json: bool, as_csv: bool,
            study_name: str | None) -> None:
    """Compare experiments: key hyperparameters, status, steps, final and best metrics, wall time.

    IDS limit it to those experiments (--tag and --status narrow them further).
    """
    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    title = None
    with open_db(ctx, Store, read_only=True) as store:
        if study_name is not None:
            if ids or tags:
                raise click.UsageError("--study chooses the experiments itself; leave out IDS and --tag")
            rows, title, objective = _study_rows(store, study_name, statuses, words=not (as_json or as_csv))
            sort_by = sort_by or objective
        else:
            rows = load_rows(store, ids, tags, statuses)
    if not rows:
        if as_json:
            print_json([])
        # CSV readers get an empty file; the note goes to stderr so it cannot be parsed as data.
        click.echo(NOTHING_MATCHES.format(db=db_hint(db_url(ctx))), err=as_json or as_csv)
        return
    if by_seed:
        rows = group_seeds(rows)
    cols = resolve_columns(rows, [c.strip() for c in columns.split(",") if c.strip()] if columns else None)
    metrics = metric_names(rows)
    sort_rows(rows, sort_by)  # an unknown --sort metric is refused before anything is printed
    # Scores computed differently (another backbone, sample count, metric version) are never ranked together.
    groups = card_groups(rows, sort_by)
    for group in groups:
        group.rows = sort_rows(group.rows, sort_by)
    if as_json or as_csv:
        records = []
        for group in groups:
            for row, rec in zip(group.rows, to_records(group.rows, cols, metrics)):
                rec["card_group"] = group.label
                rec["card_differs"] = group.differs
                # A CSV cell holds the cards as JSON text.
                rec["cards"] = row.cards if as_json else json.dumps(row.cards, sort_keys=True)
                records.append(rec)
        if as_json:
            print_json(records)
            return
        records = [{printable(k): _csv_value(v) for k, v in rec.items()} for rec in records]
        fields = list(dict.fromkeys(k for rec in records for k in rec))
        writer = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
    elif len(groups) == 1:
        render(groups[0].rows, cols if columns else None, metrics, title=title)
    else:
        for group in groups:
            why = ("; differs from A in " + "; ".join(group.differs)) if group.differs else ""
            # A heading line rather than the table's title: rich wraps a title to the table's width.
            click.echo(printable(f"metric card {group.label} of {len(groups)} ({len(group.rows)} run(s)){why}"))
            render(group.rows, cols if columns else None, metric_names(group.rows))
        click.echo(f"{len(groups)} metric cards among these runs: each table ranks only runs whose scores were "
                   "computed the same way (apart from the seed); --json shows the cards")


def _study_rows(store: Store, name: str, statuses: Sequence[str], *, words: bool) -> tuple[list[RunRow], str, str]:
    """A study's started trials as rows, a title naming the best.

    With ``words`` (the table) the status says where a pruned run stopped; JSON and CSV keep the bare status.
    """
    from ganlab.search.results import best_trial, status_text

    check_name(name, what="--study")
    study, trials = store.study(name)
    now = datetime.now(UTC)
    rows = [replace(record_row(rec, now), status=status_text(rec) if words else rec.status) for rec, _ in trials
            if rec.status != "queued" and (not statuses or rec.status in statuses)]
    best = best_trial(study, trials)
    found = (f"best: trial {best[1].trial} (experiment {best[0].id}), {study.objective} {best[1].value:.4g}"
             if best is not None and best[1].value is not None else "no finished trial yet")
    return rows, f"study {study.name} ({study.sampler}, pruner {study.pruner}): {found}", study.objective
