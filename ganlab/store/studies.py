"""Studies in the queue: creating one with its trial rows, reading a study's cohort, sampling a claimed trial.

A study's trials are ordinary experiment rows (``study_id``, ``trial``), so
leases, fencing, resume and ``queue retry`` treat them like any other. A
sampled search's trial is queued *unsampled*: its config is the study's
first base point and its ``config_hash`` carries :data:`UNSAMPLED`, so it is
never taken for a duplicate. The worker that claims it writes the drawn
values into the config, under its fence (:func:`sample_claimed`); a trial
claimed again after a crash finds them there and is never drawn twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from ganlab.errors import ConfigError, LeaseLost
from ganlab.search.cohort import TrialRow
from ganlab.search.space import CONFIG_PATH, SearchSpace
from ganlab.store.models import Experiment, Study, TrialValue, utcnow

#: Prefix of the config_hash of a trial not sampled yet (a real hash is 16 hex digits).
UNSAMPLED = "unsampled:"
_PLUGIN_NAME = {"arch": ("architecture", "name"), "dataset": ("dataset", "name"), "loss": ("loss", "name")}


@dataclass(frozen=True)
class NewStudy:
    name: str
    objective: str
    direction: str
    sampler: str
    pruner: str
    trials: int
    space: dict[str, Any]
    seed: int


@dataclass(frozen=True)
class StudyRecord:
    id: int
    name: str
    objective: str
    direction: str
    sampler: str
    pruner: str
    trials: int
    space: dict[str, Any]
    seed: int
    created_at: Any

    def search_space(self) -> SearchSpace | None:
        return SearchSpace.from_json(self.space) if self.sampler != "grid" else None

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("space", "trials")}
        out["budget"] = self.trials  # "trials" is the list of them in study show --json
        out["created_at"] = self.created_at.isoformat() if self.created_at else None
        return out


def unsampled_hash(study_id: int, trial: int) -> str:
    return f"{UNSAMPLED}{study_id}:{trial}"


def study_exists(conn: Connection, name: str) -> bool:
    return conn.scalar(select(Study.id).where(Study.name == name)) is not None


def insert_study(conn: Connection, study: NewStudy) -> int:
    """The new study's id; ConfigError if the name is taken (the unique index guards a race too)."""
    if study_exists(conn, study.name):
        raise ConfigError(f"study {study.name!r} already exists; choose another name with --study "
                          "(see: ganlab study list)")
    values = {**study.__dict__, "created_at": utcnow()}
    return int(conn.execute(insert(Study).values(**values).returning(Study.id)).scalar_one())


def number_trials(conn: Connection, study_id: int, ids: Sequence[int], *, unsampled: bool) -> None:
    """Give the study's rows their trial numbers, 0.. in queue order (and their unsampled marks)."""
    for k, exp_id in enumerate(ids):
        values: dict[str, Any] = {"study_id": study_id, "trial": k}
        if unsampled:
            values["config_hash"] = unsampled_hash(study_id, k)
        conn.execute(update(Experiment).where(Experiment.id == exp_id).values(**values))


def read_study(conn: Connection, *, study_id: int | None = None, name: str | None = None) -> StudyRecord | None:
    query = select(Study.__table__)
    query = query.where(Study.id == study_id) if study_id is not None else query.where(Study.name == name)
    row = conn.execute(query).mappings().one_or_none()
    return StudyRecord(**row) if row is not None else None


def sampled_values(space: SearchSpace | None, config: Mapping[str, Any], config_hash: str) -> dict[str, Any] | None:
    """A trial's drawn values read back from its config, or None while it is unsampled (or a grid point)."""
    if space is None or config_hash.startswith(UNSAMPLED):
        return None
    out: dict[str, Any] = {}
    try:
        for dim in space.dims:
            section, _, name = dim.target.partition(".")
            if not name:  # a plugin axis
                path = _PLUGIN_NAME.get(section)
                out[dim.key] = (config.get("augment", {}).get("name", "none") if path is None
                                else config[path[0]][path[1]])
                continue
            node: Any = config
            for part in CONFIG_PATH[section]:
                node = node[part]
            out[dim.key] = node[name]
    except (KeyError, TypeError):
        return None  # a row edited out of shape: the sampler learns nothing from it
    return out


def cohort(conn: Connection, study: StudyRecord) -> list[tuple[int, TrialRow]]:
    """Every trial of ``study`` as ``(experiment id, TrialRow)``, with its evaluations."""
    rows = conn.execute(
        select(Experiment.id, Experiment.trial, Experiment.status, Experiment.config, Experiment.config_hash,
               Experiment.metrics).where(Experiment.study_id == study.id).order_by(Experiment.trial)
    ).all()
    values: dict[int, dict[int, float]] = {}
    ids = [r.id for r in rows]
    if ids:
        for exp_id, step, value in conn.execute(
            select(TrialValue.experiment_id, TrialValue.step, TrialValue.value)
            .join(Experiment, Experiment.id == TrialValue.experiment_id)
            .where(Experiment.study_id == study.id)
        ):
            if value is not None and math.isfinite(value):
                values.setdefault(exp_id, {})[int(step)] = float(value)
    space = study.search_space()
    out = []
    for r in rows:
        metric = (r.metrics or {}).get(study.objective) if isinstance(r.metrics, dict) else None
        value = float(metric) if isinstance(metric, (int, float)) and not isinstance(metric, bool) else None
        params = sampled_values(space, r.config, r.config_hash) if isinstance(r.config, dict) else None
        out.append((r.id, TrialRow(int(r.trial if r.trial is not None else -1), r.status, params, value,
                                   values.get(r.id, {}))))
    return out


def fenced_row(conn: Connection, exp_id: int, token: int) -> Any:
    """The running row held under ``token``; LeaseLost otherwise."""
    row = conn.execute(
        select(Experiment.id, Experiment.study_id, Experiment.trial, Experiment.config, Experiment.config_hash,
               Experiment.stop_reason)
        .where(Experiment.id == exp_id, Experiment.status == "running", Experiment.fence == token)
    ).one_or_none()
    if row is None:
        raise LeaseLost(f"experiment {exp_id} is no longer running under token {token}; stop working on it")
    return row


def lock_study(conn: Connection, study_id: int) -> StudyRecord:
    """The study, its row locked until the transaction ends: samplers and pruners of one study take turns."""
    conn.execute(select(Study.id).where(Study.id == study_id).with_for_update())
    study = read_study(conn, study_id=study_id)
    if study is None:
        raise ConfigError(f"study {study_id} was removed")
    return study


def sample_claimed(conn: Connection, exp_id: int, token: int) -> dict[str, Any] | None:
    """Draw and store the values of a claimed, unsampled trial; returns the column values written, or None."""
    from ganlab.search.sampler import sample

    row = fenced_row(conn, exp_id, token)
    if row.study_id is None or not str(row.config_hash).startswith(UNSAMPLED):
        return None  # a grid point, or sampled on an earlier claim: its values stand
    study = lock_study(conn, row.study_id)
    try:
        space = study.search_space()
        if space is None:
            return None
        trials = [t for _, t in cohort(conn, study)]
        values = sample(study.sampler, study.seed, study.trials, study.direction, space, int(row.trial), trials)
        config, files = space.config_for(values)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # The study row is read back from the database: one edited out of shape fails this trial, nothing else.
        raise ConfigError(f"study {study.name!r} is malformed ({type(exc).__name__}: {exc})") from None
    written = {"config": config.to_dict(), "config_hash": config.hash, "architecture": config.architecture,
               "dataset": config.dataset, "loss": config.loss, "plugin_files": files,
               "total_steps": int(config.train.get("steps", 0))}
    conn.execute(update(Experiment).where(Experiment.id == exp_id, Experiment.fence == token).values(**written))
    return written


def store_value(conn: Connection, exp_id: int, step: int, value: float) -> None:
    """The objective at ``step`` (again after a resume: the later evaluation replaces the earlier)."""
    conn.execute(delete(TrialValue).where(TrialValue.experiment_id == exp_id, TrialValue.step == step))
    conn.execute(insert(TrialValue).values(experiment_id=exp_id, step=step, value=value))


__all__ = ["UNSAMPLED", "NewStudy", "StudyRecord", "cohort", "fenced_row", "insert_study", "lock_study",
           "number_trials", "read_study", "sample_claimed", "sampled_values", "store_value", "study_exists",
           "unsampled_hash"]
