"""``ganlab queue add --search/--prune/--study``: queueing a study (a sampled search, or a grid with a cohort).

Kept apart from ``queue_cmd.py``: a grid without these options goes the old way, untouched.
"""

from __future__ import annotations

from typing import Any

import click

from ganlab.build_check import check_builds
from ganlab.cli.db_option import db_url, open_db
from ganlab.cli.output import print_table
from ganlab.config import Resolver
from ganlab.errors import ConfigError
from ganlab.plugin_files import PluginFile
from ganlab.registry import Registry
from ganlab.search.cohort import study_seed
from ganlab.search.objectives import check_objective
from ganlab.search.space import SearchSettings, SearchSpace, build_space
from ganlab.store.records import NewExperiment
from ganlab.store.storage import Store
from ganlab.store.studies import NewStudy
from ganlab.store.urls import display_url
from ganlab.sweep import Grid, Planned


def search_settings(
    given: dict[str, Any], from_file: dict[str, Any] | None
) -> SearchSettings:
    """Command-line options over the sweep file's ``[search]`` table over the defaults, validated."""
    merged = {k: v for k, v in (from_file or {}).items()}
    merged.update({k: v for k, v in given.items() if v is not None})
    return SearchSettings(
        sampler=merged.get("sampler", "grid"), trials=merged.get("trials"), objective=merged.get("objective", "fd"),
        prune=merged.get("prune", "none"), study=merged.get("study"),
    ).check()


def _study_name(store_ctx: click.Context, settings: SearchSettings, base: str) -> str:
    if settings.study is not None:
        return settings.study
    with open_db(store_ctx, Store, create=True) as store:
        return store.free_study_name(base)


def _describe(space: SearchSpace) -> list[tuple[str, str, str]]:
    rows = []
    for dim in space.dims:
        what = dim.distribution.text() if dim.distribution else "one of " + ", ".join(map(str, dim.choices or ()))
        rows.append((dim.key, dim.target, what))
    return rows


def queue_search(
    ctx: click.Context, registry: Registry, grids: list[Grid], settings: SearchSettings, *, name: str | None,
    priority: int, tags: tuple[str, ...], quiet: bool, dry_run: bool, build_check: bool,
) -> None:
    """Check the space, then store the study and its unsampled trials in one transaction."""
    if len(grids) != 1:
        raise ConfigError("a search samples one block: use a [grid] without [[experiments]] in the sweep file")
    resolver = Resolver(registry)
    space = build_space(resolver, grids[0], registry.plugin_files)
    if build_check:  # the smallest and largest of every range, built for the data shape
        check_builds(resolver, space.corners(), say=lambda m: click.echo(m, err=True))
    first, files = space.first_base()
    base = name or grids[0].name or f"{first.architecture}-{first.dataset}-{first.loss}"
    assert settings.trials is not None
    if dry_run:
        print_table(["key", "sets", "sampled from"], _describe(space))
        click.echo(f"dry run: would queue study {settings.study or base} of {settings.trials} trial(s) "
                   f"({settings.sampler}, objective {settings.objective}, pruner {settings.prune}) in "
                   f"{display_url(db_url(ctx))}; nothing stored")
        return
    study_name = _study_name(ctx, settings, base)
    pinned = tuple(PluginFile(**f) for f in files)
    items = [NewExperiment(first, f"{study_name}-{k}", priority, tags, plugin_files=pinned)
             for k in range(settings.trials)]
    study = NewStudy(study_name, settings.objective, check_objective(settings.objective, first, registry), settings.sampler,
                     settings.prune, settings.trials, space.to_json(), study_seed(study_name))
    with open_db(ctx, Store, create=True) as store:
        _, result = store.enqueue_study(study, items)
        where = store.where
    if quiet:
        click.echo("\n".join(str(i) for i, _ in result.queued))
        return
    click.echo(f"study {study_name}: {len(result.queued)} trial(s) queued in {where} "
               f"({settings.sampler}, objective {settings.objective}, pruner {settings.prune}); "
               "each trial's values are drawn when a worker claims it")


def queue_grid_study(
    ctx: click.Context, registry: Registry, planned: list[Planned], settings: SearchSettings, *,
    name: str | None, allow_duplicates: bool, quiet: bool,
) -> None:
    """A grid whose points form a study (the pruner's cohort): queued like any sweep, plus the study row."""
    files: dict[tuple[str, ...], tuple[PluginFile, ...]] = {}
    items = []
    for p in planned:
        key = (p.config.architecture, p.config.dataset, p.config.loss, p.config.augmentation)
        if key not in files:
            files[key] = registry.plugin_files(*key)
        items.append(NewExperiment(p.config, p.name, p.priority, p.tags, plugin_files=files[key]))
    first = planned[0].config
    base = name or f"{first.architecture}-{first.dataset}-{first.loss}"
    study_name = _study_name(ctx, settings, base)
    study = NewStudy(study_name, settings.objective, check_objective(settings.objective, first, registry), "grid", settings.prune,
                     len(items), {}, study_seed(study_name))
    with open_db(ctx, Store, create=True) as store:
        _, result = store.enqueue_study(study, items, allow_duplicates=allow_duplicates)
        where = store.where
    if result.queued:
        click.echo("\n".join(str(i) if quiet else f"queued {i}  {n}" for i, n in result.queued))
    if result.skipped:
        click.echo("\n".join(f"warning: skipped {s.name}: same config as experiment {s.existing_id} "
                             f"({s.existing_status})" if s.existing_id is not None else
                             f"warning: skipped {s.name}: same config as an earlier experiment of this sweep"
                             for s in result.skipped), err=True)
    if not quiet:
        click.echo(f"study {study_name}: {len(result.queued)} experiment(s) queued in {where} "
                   f"(grid, objective {settings.objective}, pruner {settings.prune})")


__all__ = ["queue_grid_study", "queue_search", "search_settings"]
