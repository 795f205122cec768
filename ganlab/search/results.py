"""What a study found: its best trial and each trial's status in words (for ``study show`` and ``compare --study``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ganlab.search.cohort import TrialRow
from ganlab.store.records import ExperimentRecord
from ganlab.store.studies import StudyRecord

Trial = tuple[ExperimentRecord, TrialRow]


def best_trial(study: StudyRecord, trials: Sequence[Trial]) -> Trial | None:
    """The finished trial (succeeded, or ended by a GAN-aware stop) with the best objective, or None."""
    done = [t for t in trials if t[1].finished]
    if not done:
        return None
    sign = 1 if study.direction == "minimize" else -1
    return min(done, key=lambda t: (sign * float(t[1].value or 0.0), t[1].trial))


def status_text(rec: ExperimentRecord) -> str:
    """``succeeded``, ``pruned at step 400``, ``stopped: no improvement ...``: how a trial ended, in words."""
    if rec.status == "pruned":
        return f"pruned at step {rec.step}"
    if rec.status == "stopped" and rec.stop_reason:
        return f"stopped: {rec.stop_reason}"
    return rec.status


def trial_dict(study: StudyRecord, rec: ExperimentRecord, row: TrialRow, best: Trial | None) -> dict[str, Any]:
    """One trial for ``--json``: its row, drawn values, objective, evaluations and ending."""
    return {
        "trial": row.trial, "id": rec.id, "name": rec.name, "status": rec.status, "step": rec.step,
        "total_steps": rec.total_steps, "params": dict(row.params) if row.params is not None else None,
        study.objective: row.value, "values": {str(k): v for k, v in sorted(row.values.items())},
        "stop_reason": rec.stop_reason, "best": best is not None and best[0].id == rec.id,
    }


__all__ = ["Trial", "best_trial", "status_text", "trial_dict"]
