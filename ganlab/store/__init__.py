"""The experiment database: tables (models), state changes (storage), the worker's claim API (queue).

Import cost matters here: the queue commands must answer fast and must never
start a Keras backend, so nothing in this package imports keras or tensorflow.
"""

from ganlab.store.database import DB_ENV, DEFAULT_URL, display_url, resolve_url, upgrade
from ganlab.store.models import SCHEMA_VERSION, STATUSES
from ganlab.store.queue import Claim, Heartbeat, Queue, Reclaimed
from ganlab.store.storage import (
    TRANSITIONS,
    EnqueueResult,
    ExperimentRecord,
    ExperimentSummary,
    NewExperiment,
    Skipped,
    Store,
    WorkerRecord,
)

__all__ = [
    "Claim",
    "DB_ENV",
    "DEFAULT_URL",
    "EnqueueResult",
    "ExperimentRecord",
    "ExperimentSummary",
    "Heartbeat",
    "NewExperiment",
    "Queue",
    "Reclaimed",
    "SCHEMA_VERSION",
    "STATUSES",
    "Skipped",
    "Store",
    "TRANSITIONS",
    "WorkerRecord",
    "display_url",
    "resolve_url",
    "upgrade",
]
