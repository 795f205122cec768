"""Putting a report together: runs in, one HTML file out (written whole or not at all)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ganlab.atomicfile import atomic_write
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
    order = {r.id: i for i, r in enumerate(sort_rows(rows, sort_by))}
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
    tags = curve_tags(runs)
    curves = [(tag, curve_figure(runs, tag, "step"), curve_figure(runs, tag, "seconds")) for tag in tags]
    parallel = parallel_figure(runs, keys, goal) if goal else None
    return render(runs, keys=keys, metrics=metrics, curves=curves, parallel=parallel,
                  gallery=gallery(runs, keys), notes=notes, title=title)


def write(page: str, path: Path) -> int:
    """Write ``page`` to ``path`` in one step; the size in bytes."""
    data = page.encode("utf-8")
    with atomic_write(path, durable=False) as fh:
        fh.write(data)
    return len(data)
