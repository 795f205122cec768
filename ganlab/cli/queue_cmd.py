"""``ganlab queue``: add experiments and sweeps, list and inspect them, cancel, retry, remove, reprioritise."""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from ganlab.build_check import check_builds
from ganlab.cli import queue_extend_cmd, queue_view
from ganlab.cli.db_option import db_option, db_url, open_db
from ganlab.cli.experiment_options import ExperimentOptions, experiment_options
from ganlab.cli.output import print_table
from ganlab.cli.study_add import queue_grid_study, queue_search, search_settings
from ganlab.cli.types import Count, ExperimentId, Priority
from ganlab.config import Resolver
from ganlab.errors import ConfigError, DatabaseMissing
from ganlab.limits import DEFAULT_MAX_EXPERIMENTS
from ganlab.metrics.selection import DEFAULT_METRICS, metric_names
from ganlab.names import check_name, printable
from ganlab.pack_plan import check_pack, pack_keys
from ganlab.plugin_files import PluginFile, check_folder, read_source
from ganlab.store.records import ExperimentRecord, NewExperiment, check_tag
from ganlab.store.storage import Store
from ganlab.store.urls import db_hint, display_url
from ganlab.sweep import Grid, Planned, expand, load_sweep, parse_seeds, split_list

RICH_TABLE_ROWS = 1000


@click.group()
@db_option
def queue() -> None:
    """Queue experiments in the experiment database and manage them."""


def _open(ctx: click.Context, *, read_only: bool = False) -> Store:
    return open_db(ctx, Store, read_only=read_only)


# ------------------------------------------------------------------------- add


@queue.command("add")
@db_option
@experiment_options
@click.option("--name", default=None, help="Name (a sweep appends the varying values); default from the plugins.")
@click.option("--priority", type=Priority, default=None, help="Higher runs first (default 0).")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Label for filtering (list --tag, worker --tag). Repeatable.")
@click.option("--seeds", default=None, metavar="S,S,...", help="Repeat every experiment with each of these seeds.")
@click.option("--pack", type=Count, default=None, metavar="K",
              help="Train every K seeds of --seeds together in one compiled step (JAX only; see docs/worker.md).")
@click.option("-f", "--file", "sweep_file", default=None, metavar="SWEEP.toml", help="Read a sweep file (see docs/queue.md).")
@click.option("--dry-run", is_flag=True, help="Print what would be queued; store nothing.")
@click.option("--allow-duplicates", is_flag=True, help="Queue configs identical to queued, running or succeeded ones.")
@click.option("--max-experiments", type=Count, default=DEFAULT_MAX_EXPERIMENTS, show_default=True,
              help="Refuse a sweep of more experiments than this (counted before anything is expanded).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the new ids, one per line.")
@click.option("--no-build-check", is_flag=True, help="Skip building each architecture for its data shape first.")
@click.option("--search", "search", default=None, metavar="grid|random|tpe",
              help="grid (default): every combination. random/tpe: sample --trials points; --set takes "
                   "uniform(a,b), log(a,b), int(a,b), int(a,b,log) and comma lists (see docs/search.md).")
@click.option("--trials", type=int, default=None, metavar="N", help="How many points a random/tpe search samples.")
@click.option("--objective", default=None, metavar="NAME", help="The metric a study minimises (default fd).")
@click.option("--prune", default=None, metavar="asha|median|none",
              help="Stop trials whose objective falls behind the study's, at their evaluations (default none).")
@click.option("--study", "study", default=None, metavar="NAME", help="Name of the study (default from --name or the plugins).")
@click.pass_context
def add(
    ctx: click.Context,
    experiment: ExperimentOptions,
    name: str | None,
    priority: int | None,
    tags: tuple[str, ...],
    seeds: str | None,
    pack: int | None,
    sweep_file: str | None,
    dry_run: bool,
    allow_duplicates: bool,
    max_experiments: int,
    quiet: bool,
    no_build_check: bool,
    search: str | None,
    trials: int | None,
    objective: str | None,
    prune: str | None,
    study: str | None,
) -> None:
    """Queue one experiment or a sweep, validated against the plugins first.

    A comma list in --arch/--dataset/--loss/--set queues every combination;
    the whole sweep is stored in one transaction or not at all.
    """
    if name is not None:
        check_name(name, what="--name")
    tag_list = tuple(dict.fromkeys(check_tag(t) for raw in tags for t in split_list("--tag", raw)))
    seed_list = parse_seeds(seeds) if seeds is not None else None
    file_search = None
    if sweep_file is not None:
        grids, file_search = _file_grids(sweep_file, experiment, name, priority, tag_list, seed_list)
    else:
        grids = [experiment.grid(lists=True, seeds=seed_list, name=name, priority=priority or 0, tags=tag_list)]
    settings = search_settings({"sampler": search, "trials": trials, "objective": objective, "prune": prune,
                                "study": study}, file_search)
    if settings.samples and settings.trials is not None and settings.trials > max_experiments:
        raise ConfigError(f"--trials {settings.trials} is more than the limit of {max_experiments:,} experiments; "
                          "raise it with --max-experiments N")
    registry = ctx.obj.registry()
    if settings.samples:
        queue_search(ctx, registry, grids, settings, name=name, priority=priority or 0, tags=tag_list, quiet=quiet,
                     dry_run=dry_run, build_check=not no_build_check)
        return
    resolver = Resolver(registry)
    planned = expand(resolver, grids, max_experiments=max_experiments)
    if pack is not None:
        check_pack(pack, grids[0] if sweep_file is None else None, planned)
    if not no_build_check:  # every architecture built for its data shape, once per distinct build (cached)
        check_builds(resolver, (p.config for p in planned), say=lambda m: click.echo(m, err=True))
    if dry_run:
        _dry_run(ctx, planned, allow_duplicates)
        return
    if settings.wants_study:
        queue_grid_study(ctx, registry, planned, settings, name=name, allow_duplicates=allow_duplicates, quiet=quiet)
        return
    files = functools.lru_cache(maxsize=None)(registry.plugin_files)  # a sweep has few distinct plugin triples
    keys: list[str | None] = list(pack_keys(planned, pack)) if pack is not None else [None] * len(planned)
    items = [
        NewExperiment(p.config, p.name, p.priority, p.tags,
                      plugin_files=files(p.config.architecture, p.config.dataset, p.config.loss, p.config.augmentation,
                                         metric_names(p.config.train.get("metrics", DEFAULT_METRICS))),
                      pack_key=key)
        for p, key in zip(planned, keys)
    ]
    with open_db(ctx, Store, create=True) as store:
        result = store.enqueue(items, allow_duplicates=allow_duplicates)
        where = store.where
    # One write per stream, not one per line: a 100,000-experiment sweep prints 100,000 lines.
    if result.queued:
        click.echo("\n".join(str(i) if quiet else f"queued {i}  {n}" for i, n in result.queued))
    if result.skipped:
        click.echo("\n".join(f"warning: skipped {skip.name}: {_duplicate_note(skip.existing_id, skip.existing_status)}; "
                             "--allow-duplicates queues it anyway" for skip in result.skipped), err=True)
    if not quiet:
        extra = f", {len(result.skipped)} skipped as duplicates" if result.skipped else ""
        packed = f" in packs of up to {pack} seeds" if pack is not None and result.queued else ""
        click.echo(f"{len(result.queued)} experiment(s) queued{packed} in {where}{extra}")


def _file_grids(
    path: str,
    experiment: ExperimentOptions,
    name: str | None,
    priority: int | None,
    tags: tuple[str, ...],
    seeds: tuple[int, ...] | None,
) -> tuple[list[Grid], dict[str, Any]]:
    """The file's blocks, with command-line settings applied to every one of them, and its [search] table."""
    given = experiment.plugin_options_given()
    if given:
        raise ConfigError(f"{', '.join(given)} cannot be combined with -f; choose plugins in the sweep file {path}")
    overrides = experiment.settings(lists=True)
    grids = []
    blocks, search = load_sweep(path)
    for grid in blocks:
        sets = {k: v for k, v in grid.sets.items() if k not in overrides}
        sets.update(overrides)
        grids.append(replace(
            grid,
            sets=sets,
            seeds=seeds if seeds is not None else grid.seeds,
            name=name or grid.name,
            priority=priority if priority is not None else grid.priority,
            tags=tuple(dict.fromkeys(grid.tags + tags)),
        ))
    return grids, search


def _duplicate_note(existing_id: int | None, status: str | None) -> str:
    if existing_id is None:
        return "same config as an earlier experiment of this sweep"
    return f"same config as experiment {existing_id} ({status})"


def _print_plan(columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """The dry run's table; past :data:`RICH_TABLE_ROWS` rows, plain aligned columns.

    A rich table measures every cell: 100,000 rows took about a minute; plain
    columns take well under a second and still read (and grep) row by row.
    """
    if len(rows) <= RICH_TABLE_ROWS:
        print_table(columns, rows)
        return
    cells = [columns, *[["" if v is None else str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    click.echo("\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells))


def _dry_run(ctx: click.Context, planned: list[Planned], allow_duplicates: bool) -> None:
    url = db_url(ctx)
    existing: dict[str, tuple[int, str]] = {}
    if not allow_duplicates:
        try:
            with open_db(ctx, Store, read_only=True) as store:
                existing = store.duplicates(p.config.hash for p in planned)
        except DatabaseMissing:
            pass  # nothing queued yet, so nothing can be a duplicate
    seen: set[str] = set()
    rows = []
    skipped = 0
    for i, plan in enumerate(planned, 1):
        h = plan.config.hash
        note = ""
        if not allow_duplicates and h in existing:
            note = "skip: " + _duplicate_note(*existing[h])
        elif not allow_duplicates and h in seen:
            note = "skip: " + _duplicate_note(None, None)
        seen.add(h)
        skipped += bool(note)
        point = " ".join(f"{k.rpartition('.')[2]}={v}" for k, v in plan.point.items() if k not in ("arch", "dataset", "loss"))
        rows.append((i, plan.name, plan.config.architecture, plan.config.dataset, plan.config.loss, point,
                     plan.priority, ",".join(plan.tags), note))
    _print_plan(["#", "name", "arch", "dataset", "loss", "settings", "priority", "tags", "note"], rows)
    extra = f" ({skipped} skipped as duplicates)" if skipped else ""
    click.echo(f"dry run: would queue {len(planned) - skipped} experiment(s){extra} in {display_url(url)}; nothing stored")


# --------------------------------------------------------------- state changes


@queue.command("cancel")
@db_option
@click.argument("ids", metavar="ID...", nargs=-1, type=ExperimentId)
@click.option("--all-queued", is_flag=True, help="Cancel every queued experiment.")
@click.pass_context
def cancel(ctx: click.Context, ids: tuple[int, ...], all_queued: bool) -> None:
    """Cancel experiments: a queued one at once, a running one when its worker next heartbeats."""
    if bool(ids) == all_queued:
        raise ConfigError(f"give experiment ids or --all-queued (not both); see: ganlab queue list{db_hint(db_url(ctx))}")
    with _open(ctx) as store:
        if all_queued:
            cancelled = store.cancel_all_queued()
            click.echo(f"cancelled {len(cancelled)} queued experiment(s)" + (
                f": {' '.join(map(str, cancelled))}" if 0 < len(cancelled) <= 50 else ""))
            return
        for exp_id, outcome in store.cancel(list(ids)):
            suffix = " (the worker stops it at its next heartbeat)" if outcome == "cancel requested" else ""
            click.echo(f"{outcome} {exp_id}{suffix}")


@queue.command("retry")
@db_option
@click.argument("ids", metavar="ID...", nargs=-1, type=ExperimentId, required=True)
@click.option("--rehash-plugins", is_flag=True,
              help="Record the current SHA-256 of the experiments' local plugin files (once you have checked a change).")
@click.pass_context
def retry(ctx: click.Context, ids: tuple[int, ...], rehash_plugins: bool) -> None:
    """Put failed, diverged or cancelled experiments back in the queue (resuming from their run dir)."""
    with _open(ctx) as store:
        rehashed, changes = _rehash(store.get_many(list(ids))) if rehash_plugins else ({}, [])
        for exp_id, run_dir in store.retry(list(ids), plugin_files=rehashed):
            click.echo(f"requeued {exp_id}" + (f" (resumes from the last checkpoint in {printable(run_dir)})" if run_dir else ""))
    for change in changes:
        click.echo(f"  {printable(change)}")


def _rehash(records: list[ExperimentRecord]) -> tuple[dict[int, list[PluginFile]], list[str]]:
    """Each record's plugin files with the hash of their bytes now, and what changed; runs none of them."""
    out: dict[int, list[PluginFile]] = {}
    changes: list[str] = []
    for rec in records:
        files = []
        for entry in rec.plugin_files or ():
            fields = [entry.get(k) if isinstance(entry, dict) else None for k in ("kind", "name", "path", "sha256")]
            if not all(isinstance(v, str) for v in fields) or not Path(fields[2]).is_absolute():
                raise ConfigError(f"experiment {rec.id}'s record of its plugin files is malformed; "
                                  "queue it again with 'ganlab queue add'")
            kind, name, path, old = fields
            try:
                check_folder(Path(path).parent)
                now = read_source(Path(path)).sha256
            except OSError as exc:
                raise ConfigError(f"plugin file {path} of experiment {rec.id} cannot be read ({exc.strerror}); "
                                  "restore it, or queue the experiment again with 'ganlab queue add'") from None
            files.append(PluginFile(kind, name, path, now))
            if now != old:
                changes.append(f"experiment {rec.id}: {kind} {name} now runs {path} with sha256 {now} (was {old})")
        if files:
            out[rec.id] = files
    return out, changes


@queue.command("rm")
@db_option
@click.argument("ids", metavar="ID...", nargs=-1, type=ExperimentId, required=True)
@click.pass_context
def rm(ctx: click.Context, ids: tuple[int, ...]) -> None:
    """Delete experiments that are not running (their run directories stay on disk)."""
    with _open(ctx) as store:
        removed = store.remove(list(ids))
    click.echo(f"removed {' '.join(map(str, removed))}")


@queue.command("priority")
@db_option
@click.argument("exp_id", metavar="ID", type=ExperimentId)
@click.argument("priority", metavar="N", type=Priority)
@click.pass_context
def priority_cmd(ctx: click.Context, exp_id: int, priority: int) -> None:
    """Set an experiment's priority (higher is claimed first; use -- before a negative N)."""
    with _open(ctx) as store:
        rec = store.set_priority(exp_id, priority)
    click.echo(f"experiment {rec.id} priority {rec.priority}")


# The read-only views live in their own module: queue_view.py.
queue.add_command(queue_view.list_cmd)
queue.add_command(queue_view.show)
queue.add_command(queue_extend_cmd.extend)
