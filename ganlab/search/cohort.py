"""One trial of a study as the queue holds it, in the shape the sampler and the pruners rebuild from."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Statuses whose objective value is a result the sampler learns from: a run that ended on its own
# (a GAN-aware stop ends a run early but its last evaluation still scores it).
FINISHED = ("succeeded", "stopped")


@dataclass(frozen=True)
class TrialRow:
    """``params``: the sampled values (None until claimed); ``values``: the objective at each evaluated step."""

    trial: int
    status: str
    params: Mapping[str, Any] | None
    value: float | None
    values: Mapping[int, float] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED and self.value is not None and math.isfinite(self.value)


def derived_seed(study_seed: int, trial: int) -> int:
    """The seed trial ``trial`` is sampled with: the same on every worker and after any crash."""
    digest = hashlib.sha256(f"{study_seed}:{trial}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def study_seed(name: str) -> int:
    """A study's seed, from its name: the same study queued again draws the same first points."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") >> 1


__all__ = ["FINISHED", "TrialRow", "derived_seed", "study_seed"]
