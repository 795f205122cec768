"""The comparison table: one row per experiment (or per seed group), key hyperparameters, metrics.

Pure data in, data out: the CLI feeds it rows read from the queue and
renders the result as a table, JSON or CSV. No Keras, no TensorFlow.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ganlab.errors import ConfigError
from ganlab.params import suggest

SEED_KEY = "train.seed"
#: Where a stored result keeps its metric cards, beside the scores.
CARDS_KEY = "cards"
# Settings that never explain a difference in results; hidden unless asked for.
_BOOKKEEPING = {
    "train.checkpoint_every", "train.eval_every", "train.sample_every", "train.log_every",
}
# Numbers stored with the metrics that are not scores: no "best" among them.
_NOT_SCORES = {"best_step", "step"}
# Seed sweeps name their runs "...-seed=N" (ganlab.sweep); a seed group drops that part.
_SEED_SUFFIX = re.compile(r"-seed=[^-]*$")


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
    stop_reason: str | None = None  # why a GAN-aware stop or a pruner ended the run early

    @property
    def shown_status(self) -> str:
        """The status as a table shows it: ``stopped: REASON`` for a run a stop ended."""
        return f"{self.status}: {self.stop_reason}" if self.stop_reason else self.status
    cards: dict[str, Any] = field(default_factory=dict)  # metric name -> metric card (ganlab.metrics.card)


def lower_is_better(metric: str, rows: Sequence[RunRow] = ()) -> bool:
    """Whether ``metric`` improves downwards: as its metric card says, else by name (distances, losses, times)."""
    base = metric.removeprefix("best_")
    for row in rows:
        for card in row.cards.values():
            if isinstance(card, Mapping) and base in (card.get("outputs") or ()):
                return bool(card.get("lower_is_better", True))
    name = metric.lower()
    return any(k in name for k in ("fd", "fid", "kid", "loss", "distance", "time", "wall"))


def varying_keys(rows: Sequence[RunRow]) -> list[str]:
    """Hyperparameters whose value differs between the rows (the ones worth a column).

    A parameter only some rows have (one loss's ``gp_weight``) counts when its
    values differ among those rows; that the others lack it is already said
    by the plugin's own column.
    """
    keys: list[str] = []
    every = sorted({k for r in rows for k in r.hparams})
    for key in every:
        if key in _BOOKKEEPING:
            continue
        values = {repr(r.hparams[key]) for r in rows if key in r.hparams}
        if len(values) > 1:
            keys.append(key)
    return keys


# The plugin columns: a setting whose value each of them fixes came with the plugin's defaults.
PLUGIN_KEYS = ("arch", "dataset", "loss")


def follows_plugin(rows: Sequence[RunRow], keys: Sequence[str]) -> dict[str, str]:
    """``key -> plugin column`` for each varying setting whose value the plugin choice alone fixes.

    Each loss brings its own optimiser defaults, so a sweep over losses makes
    ``train.lr_g``, ``train.beta_1``... differ although nobody chose them: the
    ``loss`` column already says everything those columns would. A setting is
    folded into a plugin column when that column varies too and every row with
    the same plugin has the same value of it; a swept setting (two values for
    one loss) stays a column of its own.
    """
    out: dict[str, str] = {}
    for key in keys:
        if key in PLUGIN_KEYS:
            continue
        for plugin in PLUGIN_KEYS:
            if plugin not in keys:
                continue
            seen: dict[str, str] = {}
            if all(seen.setdefault(repr(r.hparams.get(plugin)), repr(r.hparams.get(key))) == repr(r.hparams.get(key))
                   for r in rows):
                out[key] = plugin
                break
    return out


def metric_names(rows: Sequence[RunRow]) -> list[str]:
    """Every numeric metric any row has, sorted."""
    names = sorted({m for r in rows for m, v in r.metrics.items() if isinstance(v, (int, float))})
    return names


def is_reference(metric: str) -> bool:
    """Context for a score rather than a score: the real-vs-real floors, spreads, the best's step."""
    return metric in _NOT_SCORES or metric.endswith("_floor") or "_std" in metric


def table_metrics(metrics: Iterable[str]) -> list[str]:
    """The metric columns of the terminal table: scores only, final values first, then the bests.

    The reference numbers (:func:`is_reference`) would double the table's
    width; JSON and CSV output keep them.
    """
    scores = [m for m in metrics if not is_reference(m)]
    return sorted(scores, key=lambda m: (m.startswith("best_"), m))


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
            # One value has no spread; a "± 0" would claim the seeds agree.
            if len(values) > 1:
                spread[name] = statistics.stdev(values)
        walls = [m.wall_s for m in members if m.wall_s is not None]
        hparams = {k: v for k, v in first.hparams.items() if k != SEED_KEY}
        hparams[SEED_KEY] = ",".join(str(m.hparams.get(SEED_KEY)) for m in members)
        merged.append(
            RunRow(
                id=first.id,
                name=f"{_SEED_SUFFIX.sub('', first.name)} ×{len(members)} seeds",
                status=_group_status([m.status for m in members]),
                step=min(m.step for m in members),
                total=first.total,
                hparams=hparams,
                metrics=metrics,
                wall_s=statistics.fmean(walls) if walls else None,
                ids=[m.id for m in members],
                spread=spread,
                cards=first.cards,  # the members differ by seed only, which cards leave out when compared
            )
        )
    return merged


def _group_status(statuses: Sequence[str]) -> str:
    """One status when the seeds agree, else the count of each (a diverged seed must show)."""
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    if len(counts) == 1:
        return statuses[0]
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def sort_rows(rows: list[RunRow], metric: str | None) -> list[RunRow]:
    """Best first by ``metric`` (runs without it last); by id when no metric is given."""
    if metric is None:
        return sorted(rows, key=lambda r: r.id)
    known = metric_names(rows) + ["id", "name", "step", "wall_s"]
    if metric not in known:
        raise ConfigError(f"--sort {metric!r}: no run has that metric{suggest(metric, known)} (known: {', '.join(known)})")
    if metric in ("id", "name", "step", "wall_s"):
        return sorted(rows, key=lambda r: (getattr(r, metric) is None, getattr(r, metric) or 0))
    sign = 1.0 if lower_is_better(metric, rows) else -1.0

    def key(r: RunRow) -> tuple[bool, float]:
        v = r.metrics.get(metric)
        missing = not isinstance(v, (int, float)) or math.isnan(v)
        return (missing, sign * float(v) if not missing else 0.0)

    return sorted(rows, key=key)


def best_values(rows: Sequence[RunRow], metrics: Iterable[str]) -> dict[str, float]:
    """The best value in each metric column."""
    best: dict[str, float] = {}
    for name in metrics:
        if name in _NOT_SCORES:
            continue
        values = [float(r.metrics[name]) for r in rows
                  if isinstance(r.metrics.get(name), (int, float)) and not math.isnan(r.metrics[name])]
        if values:
            best[name] = min(values) if lower_is_better(name, rows) else max(values)
    return best


def to_records(rows: Sequence[RunRow], keys: Sequence[str], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Plain dicts for JSON and CSV output."""
    out = []
    for r in rows:
        rec: dict[str, Any] = {"id": r.id, "name": r.name, "status": r.status, "step": r.step, "total": r.total,
                               "stop_reason": r.stop_reason}
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
    """Hyperparameter columns: the ones given, checked, or those that vary (``all``: every one)."""
    if not columns:
        return varying_keys(rows)
    every = sorted({k for r in rows for k in r.hparams})
    if list(columns) == ["all"]:
        return every
    for col in columns:
        if col not in every:
            raise ConfigError(f"--columns {col!r} is not a hyperparameter of these runs{suggest(col, every)}")
    return list(columns)


def flat_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    """Numbers only, one level (nested dicts become ``a/b``)."""
    out: dict[str, float] = {}
    for key, value in (metrics or {}).items():
        if key == CARDS_KEY:  # how the scores were computed, not scores (see RunRow.cards)
            continue
        if isinstance(value, Mapping):
            out.update({f"{key}/{k}": v for k, v in flat_metrics(value).items()})
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(value)
    return out
