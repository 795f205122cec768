"""Putting a report together: runs in, one HTML file out (written whole or not at all)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ganlab.atomicfile import atomic_write
from ganlab.compare.cards import card_groups
from ganlab.compare.table import metric_names, resolve_columns, sort_rows
from ganlab.errors import ConfigError
from ganlab.report.collect import ReportRun
from ganlab.report.figures import curve_figure, curve_tags, objective, parallel_figure
from ganlab.report.images import gallery
from ganlab.report.page import default_keys, render


def check_output(path: Path) -> Path:
    """``path`` if a report can be written there, else ConfigError saying why (before any work is done)."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ConfigError(f"-o {path}: is a folder; give a file name such as {path / 'report.html'}")
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise ConfigError(f"-o {path}: {folder} {what}; create the folder or choose another path")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"-o {path}: cannot write there (permission denied); choose another path")
    return path


def build(runs: Sequence[ReportRun], *, columns: Sequence[str] | None = None, objective_name: str | None = None,
          sort_by: str | None = None, title: str = "ganlab report") -> str:
    """The report page for ``runs`` (see :func:`ganlab.report.page.render`).

    ``columns``: hyperparameter columns as ``ganlab compare --columns`` takes
    them (None: those that differ, less the ones a plugin's defaults explain).
    """
    rows = [r.row for r in runs]
    sort_rows(rows, sort_by)  # an unknown --sort metric is refused first
    # Runs whose scores were computed differently are ranked within their metric card group only.
    groups = card_groups(rows, sort_by or objective(runs, objective_name))
    order = {r.id: i for i, r in enumerate(r for g in groups for r in sort_rows(g.rows, sort_by))}
    runs = sorted(runs, key=lambda r: order[r.row.id])
    if columns:
        keys, notes = resolve_columns(rows, columns), []
    else:
        keys, folded = default_keys(runs, resolve_columns(rows, None))
        by_plugin: dict[str, list[str]] = {}
        for key, plugin in folded.items():
            by_plugin.setdefault(plugin, []).append(key)
        notes = [f"{', '.join(sorted(k))} follow {p} (--columns all shows them)." for p, k in by_plugin.items()]
    metrics = metric_names(rows)
    goal = objective(runs, objective_name)
    if objective_name and goal is None:
        raise ConfigError(f"--objective {objective_name!r}: no selected run has that metric "
                          f"(known: {', '.join(metrics) or 'none yet'})")
    missing: dict[str, int] = {}
    for r in runs:
        if r.note:
            missing[r.note] = missing.get(r.note, 0) + 1
    notes += [f"{n} run(s) without curves or samples: {why}." for why, n in sorted(missing.items())]
    ranked = runs
    if len(groups) > 1:
        notes.append(f"These runs' metric cards differ ({len(groups)} groups, column 'card'): scores are ranked "
                     "only within a group. " + " ".join(f"Group {g.label} ({len(g.rows)} run(s)) differs from A in "
                                                        f"{'; '.join(g.differs)}." for g in groups[1:]))
        first = {r.id for r in groups[0].rows}
        ranked = [r for r in runs if r.row.id in first]
    tags = curve_tags(runs)
    curves = [(tag, curve_figure(runs, tag, "step"), curve_figure(runs, tag, "seconds")) for tag in tags]
    parallel = parallel_figure(ranked, keys, goal) if goal else None
    if parallel is not None and ranked is not runs:
        notes.append(f"The hyperparameter figure shows group A only ({len(ranked)} of {len(runs)} runs).")
    return render(runs, keys=keys, metrics=metrics, curves=curves, parallel=parallel,
                  gallery=gallery(runs, keys), notes=notes, title=title, groups=groups)


def write(page: str, path: Path) -> int:
    """Write ``page`` to ``path`` in one step; the size in bytes."""
    data = page.encode("utf-8")
    with atomic_write(path, durable=False) as fh:
        fh.write(data)
    return len(data)
