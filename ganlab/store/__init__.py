"""The experiment database: tables, lifecycle, records, state changes (storage), the worker's claim API (queue).

Import cost matters here: the queue commands must answer fast and must never
start a Keras backend, so nothing in this package imports keras or tensorflow.
"""

from ganlab.store.database import upgrade
from ganlab.store.lifecycle import STATUSES, TRANSITIONS
from ganlab.store.models import SCHEMA_VERSION
from ganlab.store.queue import Claim, Heartbeat, Queue, Reclaimed
from ganlab.store.records import (
    EnqueueResult,
    ExperimentRecord,
    ExperimentSummary,
    NewExperiment,
    Skipped,
    WorkerRecord,
)
from ganlab.store.storage import Store
from ganlab.store.urls import DB_ENV, DEFAULT_URL, display_url, resolve_url

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
