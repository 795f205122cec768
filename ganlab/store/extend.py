"""``queue extend``: give finished runs a larger step budget and queue them again, same row, same run dir.

An extended experiment stays the one experiment: its id, run directory and
TensorBoard run do not change, and the worker resumes it from its latest
checkpoint. Its stored config (and so its config hash) becomes the config with
the new ``train.steps``: that is what the row now trains, and what duplicate
detection compares a new ``queue add`` with. :meth:`Store.extend` runs this in
one write transaction: every experiment is extended or none is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, text, update
from sqlalchemy.engine import Connection

from ganlab.config import ExperimentConfig
from ganlab.errors import ConfigError, IllegalTransition
from ganlab.store.database import JSONText
from ganlab.store.enqueue import PG_ENQUEUE_LOCK, find_duplicates
from ganlab.store.lifecycle import EXTENDABLE, check_transition
from ganlab.store.models import Experiment


@dataclass(frozen=True)
class Extended:
    """One experiment queued again: its old and new step budgets, and the run dir it resumes from."""

    id: int
    old_steps: int
    steps: int
    step: int
    run_dir: str | None


def extend_experiments(conn: Connection, ids: Sequence[int], steps: int, found: dict[int, str]) -> list[Extended]:
    """Raise ``train.steps`` of the experiments ``ids`` (their statuses in ``found``, rows locked) to ``steps``.

    IllegalTransition for one that is not succeeded, pruned or stopped;
    ConfigError for a budget not above its current one, or a new config that
    another experiment already has. Nothing is changed unless all pass.
    """
    for exp_id in ids:
        if found[exp_id] not in EXTENDABLE:
            raise IllegalTransition(f"experiment {exp_id} is {found[exp_id]}; only {', '.join(EXTENDABLE)} "
                                    "experiments can be extended (a failed one: ganlab queue retry)")
    rows = {r.id: r for r in conn.execute(
        select(Experiment.id, Experiment.config, Experiment.total_steps, Experiment.step, Experiment.run_dir)
        .where(Experiment.id.in_(list(ids)))
    )}
    configs: dict[int, ExperimentConfig] = {}
    for exp_id in ids:
        row = rows[exp_id]
        if steps <= row.total_steps:
            raise ConfigError(f"experiment {exp_id} already trains for {row.total_steps} steps; --steps is the new "
                              f"total and must be more than that")
        try:
            config = ExperimentConfig.from_dict(row.config)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ConfigError(f"experiment {exp_id}'s stored config is malformed; queue it again with "
                              "'ganlab queue add'") from None
        configs[exp_id] = ExperimentConfig.from_dict({**config.to_dict(), "train": {**config.train, "steps": steps}})
    _refuse_duplicates(conn, configs)
    out = []
    for exp_id in ids:
        check_transition(found[exp_id], "queued")
        config, row = configs[exp_id], rows[exp_id]
        # Attempts start again (as after a retry); the metrics stay those of the checkpoint it resumes from.
        conn.execute(
            update(Experiment).where(Experiment.id == exp_id, Experiment.status == found[exp_id]).values(
                status="queued", config=JSONText(config.to_json()), config_hash=config.hash, total_steps=steps,
                attempts=0, error=None, stop_reason=None, started_at=None, finished_at=None, cancel_requested=False,
                worker_id=None, worker_host=None, worker_pid=None, lease_expires_at=None,
            )
        )
        out.append(Extended(exp_id, row.total_steps, steps, row.step, row.run_dir))
    return out


def _refuse_duplicates(conn: Connection, configs: dict[int, ExperimentConfig]) -> None:
    """ConfigError if an extended config is one another experiment (or another of these) already has."""
    if conn.dialect.name == "postgresql":
        # The lock a checked enqueue takes: neither may slip the same config in meanwhile.
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_ENQUEUE_LOCK})
    existing = find_duplicates(conn, [c.hash for c in configs.values()])
    seen: dict[str, int] = {}
    for exp_id, config in configs.items():
        other = existing.get(config.hash)
        if other is not None and other[0] != exp_id:
            raise ConfigError(f"experiment {other[0]} ({other[1]}) already has experiment {exp_id}'s config with "
                              f"{config.train['steps']} steps; compare with it, or extend only one of the two")
        if config.hash in seen:
            raise ConfigError(f"experiments {seen[config.hash]} and {exp_id} would both become the same config; "
                              "extend only one of them")
        seen[config.hash] = exp_id
