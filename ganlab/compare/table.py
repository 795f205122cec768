"""The comparison table: one row per experiment (or per seed group), key hyperparameters, metrics.

Pure data in, data out: the CLI feeds it rows read from the queue and
renders the result as a table, JSON or CSV. No Keras, no TensorFlow.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ganlab.errors import ConfigError
from ganlab.params import suggest

SEED_KEY = "train.seed"
# Settings that never explain a difference in results; hidden unless asked for.
_BOOKKEEPING = {
    "train.checkpoint_every", "train.eval_every", "train.sample_every", "train.log_every",
}


@dataclass
class RunRow:
    """One experiment as the comparison sees it."""

    id: int
    name: str
    status: str
    step: int
    total: int
    hparams: dict[str, Any]
    metrics: dict[str, float]
    wall_s: float | None = None
    ids: list[int] = field(default_factory=list)  # members, for a seed group
    spread: dict[str, float] = field(default_factory=dict)  # std per metric, for a seed group


def lower_is_better(metric: str) -> bool:
    """Distances and losses go down; anything else (accuracy, scores) goes up."""
    name = metric.lower()
    return any(k in name for k in ("fd", "fid", "kid", "loss", "distance", "time", "wall"))


def varying_keys(rows: Sequence[RunRow]) -> list[str]:
    """Hyperparameters whose value differs between the rows (the ones worth a column)."""
    keys: list[str] = []
    every = sorted({k for r in rows for k in r.hparams})
    for key in every:
        if key in _BOOKKEEPING:
            continue
        values = {repr(r.hparams.get(key)) for r in rows}
        if len(values) > 1:
            keys.append(key)
    return keys


def metric_names(rows: Sequence[RunRow]) -> list[str]:
    names = sorted({m for r in rows for m, v in r.metrics.items() if isinstance(v, (int, float))})
    return names


def group_seeds(rows: Sequence[RunRow]) -> list[RunRow]:
    """Merge runs that differ only by seed into one row with mean and std of each metric."""
    groups: dict[tuple, list[RunRow]] = {}
    for row in rows:
        key = tuple(sorted((k, repr(v)) for k, v in row.hparams.items() if k != SEED_KEY and k not in _BOOKKEEPING))
        groups.setdefault(key, []).append(row)
    merged: list[RunRow] = []
    for members in groups.values():
        first = members[0]
        if len(members) == 1:
            merged.append(first)
            continue
        metrics: dict[str, float] = {}
        spread: dict[str, float] = {}
        for name in metric_names(members):
            values = [float(m.metrics[name]) for m in members if isinstance(m.metrics.get(name), (int, float))]
            metrics[name] = statistics.fmean(values)
            spread[name] = statistics.stdev(values) if len(values) > 1 else 0.0
        statuses = {m.status for m in members}
        walls = [m.wall_s for m in members if m.wall_s is not None]
        hparams = {k: v for k, v in first.hparams.items() if k != SEED_KEY}
        hparams[SEED_KEY] = ",".join(str(m.hparams.get(SEED_KEY)) for m in members)
        merged.append(
            RunRow(
                id=first.id,
                name=f"{first.name} ×{len(members)} seeds",
                status=statuses.pop() if len(statuses) == 1 else "mixed",
                step=min(m.step for m in members),
                total=first.total,
                hparams=hparams,
                metrics=metrics,
                wall_s=statistics.fmean(walls) if walls else None,
                ids=[m.id for m in members],
                spread=spread,
            )
        )
    return merged


def sort_rows(rows: list[RunRow], metric: str | None) -> list[RunRow]:
    """Best first by ``metric`` (runs without it last); by id when no metric is given."""
    if metric is None:
        return sorted(rows, key=lambda r: r.id)
    known = metric_names(rows) + ["id", "name", "step", "wall_s"]
    if metric not in known:
        raise ConfigError(f"--sort {metric!r}: no run has that metric{suggest(metric, known)} (known: {', '.join(known)})")
    if metric in ("id", "name", "step", "wall_s"):
        return sorted(rows, key=lambda r: (getattr(r, metric) is None, getattr(r, metric) or 0))
    sign = 1.0 if lower_is_better(metric) else -1.0

    def key(r: RunRow) -> tuple[bool, float]:
        v = r.metrics.get(metric)
        missing = not isinstance(v, (int, float)) or math.isnan(v)
        return (missing, sign * float(v) if not missing else 0.0)

    return sorted(rows, key=key)


def best_values(rows: Sequence[RunRow], metrics: Iterable[str]) -> dict[str, float]:
    """The best value in each metric column."""
    best: dict[str, float] = {}
    for name in metrics:
        values = [float(r.metrics[name]) for r in rows
                  if isinstance(r.metrics.get(name), (int, float)) and not math.isnan(r.metrics[name])]
        if values:
            best[name] = min(values) if lower_is_better(name) else max(values)
    return best


def to_records(rows: Sequence[RunRow], keys: Sequence[str], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Plain dicts for JSON and CSV output."""
    out = []
    for r in rows:
        rec: dict[str, Any] = {"id": r.id, "name": r.name, "status": r.status, "step": r.step, "total": r.total}
        if r.ids:
            rec["ids"] = r.ids
        rec.update({k: r.hparams.get(k) for k in keys})
        for m in metrics:
            rec[m] = r.metrics.get(m)
            if m in r.spread:
                rec[f"{m}_std"] = r.spread[m]
        rec["wall_s"] = r.wall_s
        out.append(rec)
    return out


def resolve_columns(rows: Sequence[RunRow], columns: Sequence[str] | None) -> list[str]:
    """Hyperparameter columns: the ones given, checked, or those that vary."""
    if not columns:
        return varying_keys(rows)
    every = sorted({k for r in rows for k in r.hparams})
    for col in columns:
        if col not in every:
            raise ConfigError(f"--columns {col!r} is not a hyperparameter of these runs{suggest(col, every)}")
    return list(columns)


def flat_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    """Numbers only, one level (nested dicts become ``a/b``)."""
    out: dict[str, float] = {}
    for key, value in (metrics or {}).items():
        if isinstance(value, Mapping):
            out.update({f"{key}/{k}": v for k, v in flat_metrics(value).items()})
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(value)
    return out
