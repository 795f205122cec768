"""Queueing new experiments: checking them, skipping duplicates and inserting the rest.

:meth:`ganlab.store.storage.Store.enqueue` runs these inside one write
transaction, so a batch is stored whole or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import insert, select, text
from sqlalchemy.engine import Connection

from ganlab.names import check_name
from ganlab.plugin_files import PluginFile
from ganlab.store.bulk_insert import insert_experiments
from ganlab.store.chunks import chunks
from ganlab.store.database import JSONText
from ganlab.store.lifecycle import DUPLICATE_STATUSES
from ganlab.store.models import Experiment, ExperimentTag, utcnow
from ganlab.store.records import EnqueueResult, NewExperiment, Skipped, check_tag

# Advisory-lock key ("ganlenq") serialising duplicate-checked enqueues on PostgreSQL; see add_experiments.
PG_ENQUEUE_LOCK = 0x67616E6C656E71


def checked_and_hashed(items: Sequence[NewExperiment]) -> list[tuple[NewExperiment, str]]:
    """``items`` with their config hashes; ConfigError for a name or tag no client may store."""
    for item in items:
        # Here as well as in the CLI: every client's names reach the same VARCHAR(200) column.
        check_name(item.name)
        for tag in item.tags:
            check_tag(tag)
    # Hashing serialises the config: do it once per item, not once per use.
    return [(item, item.config.hash) for item in items]


def find_duplicates(conn: Connection, hashes: Sequence[str]) -> dict[str, tuple[int, str]]:
    """For each config hash already queued, running or succeeded: (lowest id, its status)."""
    found: dict[str, tuple[int, str]] = {}
    for part in chunks(hashes):
        # The status is checked here, not in the WHERE: given both, SQLite searched the status
        # index (every queued row) instead of the hash index, scanning the whole queue once
        # per chunk (re-adding a 100,000-point sweep to a queue holding it took 15 s, now 4.5 s).
        rows = conn.execute(
            select(Experiment.config_hash, Experiment.id, Experiment.status)
            .where(Experiment.config_hash.in_(part))
            .order_by(Experiment.id)
        )
        for h, exp_id, status in rows:
            if status in DUPLICATE_STATUSES:
                found.setdefault(h, (exp_id, status))
    return found


def add_experiments(
    conn: Connection, hashed: list[tuple[NewExperiment, str]], *, allow_duplicates: bool
) -> EnqueueResult:
    """Insert the items of ``hashed`` in the write transaction ``conn``, skipping duplicates unless allowed."""
    skipped: list[Skipped] = []
    keep = hashed
    if not allow_duplicates:
        if conn.dialect.name == "postgresql":
            # Under READ COMMITTED two enqueues would both find no copy and both insert.
            # One lock for every checked enqueue, not one per config hash: a 100,000-point
            # sweep would need 100,000 locks in one transaction, past PostgreSQL's shared
            # lock table (max_locks_per_transaction x connections, 6,400 by default). Enqueues
            # are short and rare, SQLite already runs them one at a time, and claims,
            # heartbeats and --allow-duplicates never wait for this lock. Taken before the
            # check: each statement's snapshot then sees the rows the previous holder committed.
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_ENQUEUE_LOCK})
        existing = find_duplicates(conn, [h for _, h in hashed])
        seen: set[str] = set()
        keep = []
        for item, h in hashed:
            if h in existing:
                skipped.append(Skipped(item.name, h, *existing[h]))
            elif h in seen:
                skipped.append(Skipped(item.name, h, None, None))
            else:
                seen.add(h)
                keep.append((item, h))
    if not keep:
        return EnqueueResult([], skipped)
    # Values shared by every row are bound once in the statement, not once per row.
    shared = {"status": "queued", "queued_at": utcnow(), "attempts": 0, "fence": 0,
              "cancel_requested": False, "step": 0}
    files_json: dict[tuple[PluginFile, ...], JSONText] = {}  # a sweep shares a few distinct sets
    for item, _ in keep:
        if item.plugin_files not in files_json:
            files_json[item.plugin_files] = JSONText(json.dumps([f.to_dict() for f in item.plugin_files]))
    rows = [
        {
            "name": item.name,
            "architecture": item.config.architecture,
            "dataset": item.config.dataset,
            "loss": item.config.loss,
            "config": JSONText(item.config.to_json()),
            "config_hash": h,
            "priority": int(item.priority),
            "total_steps": int(item.config.train.get("steps", 0)),
            "plugin_files": files_json[item.plugin_files],
            "pack_key": item.pack_key,
        }
        for item, h in keep
    ]
    ids = insert_experiments(conn, rows, shared)
    tag_rows = [{"experiment_id": i, "tag": t} for i, (item, _) in zip(ids, keep) for t in dict.fromkeys(item.tags)]
    if tag_rows:
        conn.execute(insert(ExperimentTag.__table__), tag_rows)
    return EnqueueResult([(i, item.name) for i, (item, _) in zip(ids, keep)], skipped)
