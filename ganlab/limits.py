"""Bounds on numbers users give, one per field, the same on every database.

They are checked where the value enters (command-line option, sweep file,
``--set``), before anything is written, so SQLite and PostgreSQL accept and
refuse exactly the same values. docs/cli.md's "Limits" section lists each
with its reason; keep the two in step.
"""

from __future__ import annotations

# INTEGER columns are 32-bit on PostgreSQL (SQLite's are 64-bit): every number
# stored in one (ids, priority, steps, attempts) stays inside this range.
DB_INT_MAX = 2**31 - 1

MAX_EXPERIMENT_ID = DB_INT_MAX
MIN_PRIORITY = -DB_INT_MAX
MAX_PRIORITY = DB_INT_MAX
# The step counter is stored (heartbeats, total_steps), so every step count and period fits it.
MAX_STEPS = DB_INT_MAX
MAX_SEED = DB_INT_MAX
MAX_BATCH_SIZE = 65536

# Experiments one ``ganlab queue add`` may queue unless --max-experiments raises it:
# a sweep is expanded and validated in memory (about 4 KB per experiment: 450 MB
# for 100,000) before one transaction stores it, so a typo must not take the machine's memory.
DEFAULT_MAX_EXPERIMENTS = 100_000
# Sweep files are parsed whole before they are counted: 10 MB (about 170,000 short
# [[experiments]] entries) parses in about 2 s; bigger sweeps are lists in [grid], not entries.
MAX_SWEEP_FILE_BYTES = 10_000_000

# Worker timing, in seconds. A lease longer than a day would leave a dead worker's
# experiment stuck that long; polling less often than hourly looks like a hang.
MAX_LEASE_S = 86_400.0
MAX_POLL_S = 3_600.0

__all__ = [
    "DB_INT_MAX", "DEFAULT_MAX_EXPERIMENTS", "MAX_BATCH_SIZE", "MAX_EXPERIMENT_ID", "MAX_LEASE_S", "MAX_POLL_S",
    "MAX_PRIORITY", "MAX_SEED", "MAX_STEPS", "MAX_SWEEP_FILE_BYTES", "MIN_PRIORITY",
]
