"""Choosing the experiments a comparison shows: ids, tags and statuses, read in a few queries."""

from __future__ import annotations

from collections.abc import Sequence

from ganlab.errors import ConfigError
from ganlab.store.lifecycle import STATUSES
from ganlab.store.records import ExperimentRecord
from ganlab.store.storage import Store

#: What a comparison shows when no status is asked for: everything that has started.
STARTED_STATUSES = ("running", "succeeded", "failed", "diverged", "cancelled", "pruned", "stopped")


def select_records(
    store: Store,
    ids: Sequence[int] = (),
    tags: Sequence[str] = (),
    statuses: Sequence[str] = (),
    *,
    default_statuses: Sequence[str] = STARTED_STATUSES,
) -> list[ExperimentRecord]:
    """Whole records of the chosen experiments, by id.

    ``ids`` are taken as given (every one must exist: NotFound names the
    missing ones) and then narrowed by ``tags`` (any of them) and
    ``statuses`` when those are given too. Without ids, every experiment
    with one of ``tags`` and ``statuses`` (default ``default_statuses``).
    Records are read with :meth:`Store.get_many`, a few queries for
    thousands of rows.
    """
    for status in statuses:
        if status not in STATUSES:
            raise ConfigError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    if ids:
        records = store.get_many(sorted(set(ids)))
        if tags:
            records = [r for r in records if set(r.tags) & set(tags)]
        if statuses:
            records = [r for r in records if r.status in statuses]
        return records
    summaries = store.list_experiments(statuses=list(statuses or default_statuses), tags=list(tags) or None)
    return store.get_many([s.id for s in summaries])
