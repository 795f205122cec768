"""What the store hands out and takes in: experiment and worker records, detached from the database.

Also the rule for tags, which every client's new experiments must follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from ganlab.config import ExperimentConfig
from ganlab.errors import ConfigError
from ganlab.plugin_files import PluginFile

MAX_TAG_LEN = 100


def check_tag(tag: str) -> str:
    """A tag is a short word: no spaces or commas (they separate tags on the command line), nothing unprintable."""
    if not tag or len(tag) > MAX_TAG_LEN or not tag.isprintable() or any(c.isspace() or c == "," for c in tag):
        raise ConfigError(
            f"tag {tag!r} is not allowed; use 1-{MAX_TAG_LEN} printable characters without spaces or commas"
        )
    return tag


@dataclass(frozen=True)
class NewExperiment:
    """What :meth:`Store.enqueue` stores: a resolved config plus queue metadata."""

    config: ExperimentConfig
    name: str
    priority: int = 0
    tags: tuple[str, ...] = ()
    #: The local plugin files the config uses, with their SHA-256 (``Registry.plugin_files``).
    plugin_files: tuple[PluginFile, ...] = ()
    #: Shared by the seeds queued with ``--pack``: a worker claims and trains them together.
    pack_key: str | None = None


@dataclass(frozen=True)
class Skipped:
    """A config not queued because an identical one exists (``existing_id`` None: earlier in the same batch)."""

    name: str
    config_hash: str
    existing_id: int | None
    existing_status: str | None


@dataclass(frozen=True)
class EnqueueResult:
    queued: list[tuple[int, str]]
    skipped: list[Skipped]


class ExperimentSummary(NamedTuple):
    """The columns ``ganlab queue list`` shows (a tuple: cheap to build for 100,000 rows)."""

    id: int
    name: str
    architecture: str
    dataset: str
    loss: str
    status: str
    priority: int
    step: int
    total_steps: int
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested: bool
    worker_host: str | None
    tags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = self._asdict()
        for key in ("queued_at", "started_at", "finished_at"):
            out[key] = _iso(out[key])
        out["tags"] = list(self.tags)
        return out


@dataclass(frozen=True)
class ExperimentRecord:
    """A whole experiment row, detached from the database."""

    id: int
    name: str
    architecture: str
    dataset: str
    loss: str
    config: dict[str, Any]
    config_hash: str
    priority: int
    status: str
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    worker_id: str | None
    worker_host: str | None
    worker_pid: int | None
    lease_expires_at: datetime | None
    fence: int
    cancel_requested: bool
    step: int
    total_steps: int
    heartbeat_at: datetime | None
    last_losses: dict[str, Any] | None
    metrics: dict[str, Any] | None
    error: str | None
    run_dir: str | None
    run_host: str | None
    tags: tuple[str, ...] = field(default=())
    plugin_files: list[dict[str, Any]] | None = None  # None: queued before they were recorded
    stop_reason: str | None = None
    study_id: int | None = None
    trial: int | None = None
    pack_key: str | None = None

    def experiment_config(self) -> ExperimentConfig:
        return ExperimentConfig.from_dict(self.config)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            out[key] = _iso(value) if isinstance(value, datetime) else list(value) if key == "tags" else value
        return out


@dataclass(frozen=True)
class WorkerRecord:
    worker_id: str
    host: str
    pid: int
    gpus: str
    started_at: datetime
    heartbeat_at: datetime
    status: str
    slurm_job_id: str | None = None
    slurm_task: int | None = None

    @property
    def slurm(self) -> str:
        """``JOB_TASK`` as SLURM prints it (``JOB`` outside an array), or "" when not a SLURM job."""
        if self.slurm_job_id is None:
            return ""
        return self.slurm_job_id if self.slurm_task is None else f"{self.slurm_job_id}_{self.slurm_task}"

    def to_dict(self) -> dict[str, Any]:
        return {k: _iso(v) if isinstance(v, datetime) else v for k, v in self.__dict__.items()}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
