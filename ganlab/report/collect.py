"""Gathering what a report shows: the selected runs' rows from the database, curves and grids from their run dirs.

Rows are the ones ``ganlab compare`` shows (same selection, same columns);
each run's scalars and sample grids come from its own event files through
the TensorFlow-free reader :mod:`ganlab.tblog.events`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ganlab.cli.compare_cmd import record_row
from ganlab.compare.select import select_records
from ganlab.compare.table import RunRow
from ganlab.store.storage import Store
from ganlab.tblog.events import read_events

#: The image tag the trainer logs its fixed-noise grid under.
SAMPLES_TAG = "samples"
#: Scalar tags plotted as curves (best/* only repeats metrics/*; learning rates and speeds say little across runs).
CURVE_PREFIXES = ("metrics/", "loss/")


@dataclass
class Curve:
    """One scalar of one run: steps, seconds since the run started, values."""

    steps: list[int]
    seconds: list[float]
    values: list[float]


@dataclass
class ReportRun:
    """One selected run: its comparison row, curves per tag, sample grids per step, and why any are missing."""

    row: RunRow
    run_dir: str | None
    curves: dict[str, Curve] = field(default_factory=dict)
    grids: dict[int, bytes] = field(default_factory=dict)
    best_step: int | None = None
    note: str | None = None


def collect(store: Store, ids: Sequence[int] = (), tags: Sequence[str] = (), statuses: Sequence[str] = (),
            progress: Callable[[int, int], None] | None = None) -> list[ReportRun]:
    """The selected experiments (as ``ganlab compare`` selects them) with their logged curves and grids.

    A run whose directory is missing or on another machine keeps its row,
    with ``note`` saying why it has no curves.
    """
    now = datetime.now(UTC)
    records = select_records(store, ids, tags, statuses)
    host = socket.gethostname()
    runs: list[ReportRun] = []
    for i, rec in enumerate(records):
        run = ReportRun(row=record_row(rec, now), run_dir=rec.run_dir)
        best = (rec.metrics or {}).get("best_step")
        run.best_step = int(best) if isinstance(best, (int, float)) and not isinstance(best, bool) else None
        if not rec.run_dir:
            run.note = "no run dir yet"
        elif not Path(rec.run_dir).is_dir():
            elsewhere = rec.run_host and rec.run_host != host
            run.note = f"run dir on {rec.run_host}" if elsewhere else "run dir missing (moved or deleted)"
        else:
            load_run(run, Path(rec.run_dir))
        runs.append(run)
        if progress:
            progress(i + 1, len(records))
    return runs


def load_run(run: ReportRun, run_dir: Path) -> None:
    """Fill ``run``'s curves and grids from the event files in ``run_dir`` (a note when there are none)."""
    try:
        events = read_events(run_dir)
    except (OSError, ValueError) as exc:  # ValueError: protobuf's DecodeError on a damaged record
        run.note = f"event files unreadable: {type(exc).__name__}"
        return
    start = events.start_time or 0.0
    for tag, points in events.scalars.items():
        if tag.startswith(CURVE_PREFIXES):
            run.curves[tag] = Curve([p[0] for p in points], [p[1] - start for p in points], [p[2] for p in points])
    run.grids = {step: png for step, _, png in events.images.get(SAMPLES_TAG, [])}
    if not events.scalars and not events.images:
        run.note = "no events logged yet"
