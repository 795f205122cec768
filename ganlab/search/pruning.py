"""Deciding, at one evaluation, whether a trial is a loser: Optuna's pruners on a cohort rebuilt from the queue.

The cohort is every trial of the study (a sampled search or a plain grid).
Its evaluations come from the ``trial_values`` table, written by the workers
holding each trial's fencing token; the pruner itself is rebuilt from them
at every decision, so the decision is the same whichever worker makes it.

ASHA (Optuna's SuccessiveHalvingPruner) keeps, per rung, the value each
trial had when it first reached the rung's step. Optuna keeps those as trial
attributes in its own storage; here they are recomputed from the
evaluations, in step order, exactly as Optuna would have set them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ganlab.search.cohort import TrialRow

#: ASHA keeps the best third at each rung (the ASHA paper's eta).
ASHA_REDUCTION = 3
#: The median pruner waits for this many finished trials before it prunes anything.
MEDIAN_STARTUP = 3


@dataclass(frozen=True)
class Decision:
    prune: bool
    reason: str = ""


def _rung_step(min_resource: int, rung: int) -> int:
    return min_resource * ASHA_REDUCTION**rung


def rung_values(values: Mapping[int, float], min_resource: int) -> dict[str, float]:
    """``completed_rung_k -> value`` as ASHA records them: the value at the first evaluation at or past rung k."""
    out: dict[str, float] = {}
    rung = 0
    for step in sorted(values):
        while step >= _rung_step(min_resource, rung):
            out[f"completed_rung_{rung}"] = values[step]
            rung += 1
    return out


def decide(pruner: str, direction: str, objective: str, min_resource: int, current: TrialRow,
           step: int, cohort: Sequence[TrialRow]) -> Decision:
    """Whether ``current``, just evaluated at ``step``, should stop now; ``reason`` says why in one line."""
    if pruner == "none" or step not in current.values:
        return Decision(False)
    value = current.values[step]
    study, frozen = _rebuild(pruner, direction, min_resource, current, step, cohort)
    if not study.pruner.prune(study, frozen):
        return Decision(False)
    where = f"pruned by {pruner} at step {step} ({objective} {value:.4g}"
    if pruner == "asha":
        attrs = study.get_trials(deepcopy=False)[-1].system_attrs
        rung = max(int(k.rpartition("_")[2]) for k in attrs if k.startswith("completed_rung_"))
        key = f"completed_rung_{rung}"
        competing = sorted(t.system_attrs[key] for t in study.get_trials(deepcopy=False) if key in t.system_attrs)
        keep = max(1, len(competing) // ASHA_REDUCTION)
        bar = competing[keep - 1] if direction == "minimize" else competing[-keep]
        return Decision(True, f"{where} vs {bar:.4g}, the best {keep} of {len(competing)} trials at rung {rung})")
    finished = [r.values[step] for r in cohort if r.finished and step in r.values and r.trial != current.trial]
    median = f" vs median {statistics.median(finished):.4g} of {len(finished)} finished trials" if finished else ""
    return Decision(True, f"{where}{median})")


def _rebuild(pruner: str, direction: str, min_resource: int, current: TrialRow, step: int,
             cohort: Sequence[TrialRow]) -> tuple[Any, Any]:
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if pruner == "asha":
        made: Any = optuna.pruners.SuccessiveHalvingPruner(min_resource=min_resource, reduction_factor=ASHA_REDUCTION)
    else:
        made = optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_STARTUP, n_warmup_steps=0)
    study = optuna.create_study(direction=direction, pruner=made)
    for row in cohort:
        if row.trial == current.trial:
            continue
        values = {int(k): float(v) for k, v in row.values.items() if math.isfinite(v)}
        if row.finished:
            state, value = TrialState.COMPLETE, row.value
        elif row.status == "pruned":
            state, value = TrialState.PRUNED, None
        elif row.status == "running":
            state, value = TrialState.RUNNING, None
        else:
            state, value = TrialState.FAIL, None
        study.add_trial(create_trial(state=state, value=value, intermediate_values=values,
                                     system_attrs=rung_values(values, min_resource) if pruner == "asha" else None))
    # The current trial as it stood before this evaluation; the pruner adds this step's rung itself.
    earlier = {k: v for k, v in current.values.items() if k < step and math.isfinite(v)}
    mine = {**earlier, step: current.values[step]}
    study.add_trial(create_trial(state=TrialState.RUNNING, intermediate_values=mine,
                                 system_attrs=rung_values(earlier, min_resource) if pruner == "asha" else None))
    return study, study.get_trials(deepcopy=False)[-1]


__all__ = ["ASHA_REDUCTION", "MEDIAN_STARTUP", "Decision", "decide", "rung_values"]
