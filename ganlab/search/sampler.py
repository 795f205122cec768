"""Sampling one trial's values with Optuna, from a study rebuilt out of the queue's rows.

Optuna is used as a library, never as a store: each call builds a throw-away
in-memory study holding the cohort as the queue knows it (finished trials
with their objective, pruned ones with their evaluations, claimed ones as
running) and asks it for one point. The sampler's seed comes from the study's
seed and the trial number, so the answer depends only on the queue's rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ganlab.search.cohort import TrialRow, derived_seed
from ganlab.search.space import Dimension, SearchSpace


def optuna_distributions(dims: Sequence[Dimension]) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for dim in dims:
        dist = dim.distribution
        if dist is None:
            out[dim.key] = CategoricalDistribution(list(dim.choices or ()))
        elif dist.is_int:
            out[dim.key] = IntDistribution(int(dist.low), int(dist.high), log=dist.log)
        else:
            out[dim.key] = FloatDistribution(dist.low, dist.high, log=dist.log)
    return out


def _sampler(kind: str, seed: int, budget: int) -> Any:
    import optuna

    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # TPE models the space once a few trials have finished; Optuna's default of 10 random
    # start-up trials would leave most of a small budget unmodelled. The constant liar makes
    # trials sampled while others still run (several workers) spread out instead of piling up.
    startup = max(2, min(10, budget // 4))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)


def build_study(kind: str, seed: int, budget: int, direction: str, space: SearchSpace,
                cohort: Sequence[TrialRow]) -> Any:
    """An in-memory Optuna study holding every sampled trial of ``cohort``."""
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = optuna_distributions(space.dims)
    study = optuna.create_study(direction=direction, sampler=_sampler(kind, seed, budget))
    for row in sorted(cohort, key=lambda r: r.trial):
        params = dict(row.params or {})
        if row.params is None or not all(d.key in params and d.contains(params[d.key]) for d in space.dims):
            continue  # not sampled yet, or not a point of this space: nothing to learn from
        params = {d.key: params[d.key] for d in space.dims}
        values = {int(k): float(v) for k, v in row.values.items() if math.isfinite(v)}
        if row.finished:
            state, value = TrialState.COMPLETE, row.value
        elif row.status == "pruned":
            state, value = TrialState.PRUNED, None
        elif row.status in ("running", "queued"):
            state, value = TrialState.RUNNING, None
        else:
            state, value = TrialState.FAIL, None
        study.add_trial(create_trial(state=state, value=value, params=params, distributions=dists,
                                     intermediate_values=values))
    return study


def sample(kind: str, study_seed: int, budget: int, direction: str, space: SearchSpace, trial: int,
           cohort: Sequence[TrialRow]) -> dict[str, Any]:
    """The values of trial ``trial``: ``key -> value`` for every dimension of ``space``."""
    dists = optuna_distributions(space.dims)
    study = build_study(kind, derived_seed(study_seed, trial), budget, direction, space,
                        [r for r in cohort if r.trial != trial])
    return dict(study.ask(dists).params)


__all__ = ["build_study", "optuna_distributions", "sample"]
