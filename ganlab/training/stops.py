"""GAN-aware stops: end a run early when its own signals say more steps will not help.

Three rules, each off until its ``train.*`` setting turns it on:

- ``patience=K``: K evaluations in a row without a better ``patience_metric``
  (``fd`` by default) than the best so far;
- ``stop_d_wins_steps=N``: the discriminator right about every real and every
  generated image of the batch (``disc/accuracy`` 1) for N steps in a row;
- ``stop_collapse_fraction=F``: at an evaluation, the spread of the generated
  images' features under F times the real data's (a generator that draws the
  same few images whatever its noise).

The rules only count; the trainer checkpoints and ends the run ``stopped``
with :attr:`EarlyStops.fired` as its reason. Their counts go into every
checkpoint, so a run resumed after a crash counts on where it was, and one
resumed after its stop fired (its worker died before recording it) ends at
once with the same reason. A run whose step budget was raised after its stop
fired (``ganlab queue extend``) starts every count afresh: patience gives it
K new evaluations to beat its best, the discriminator N new steps, so the
stop that ended it cannot fire again before new evidence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ganlab.config import train_setting


class EarlyStops:
    """The stop rules of one run and their counts.

    Args:
        train: the run's resolved training settings.
        state: what :meth:`state` returned into the checkpoint resumed from (None: a new run).
    """

    def __init__(self, train: Mapping[str, Any], state: Mapping[str, Any] | None = None) -> None:
        self.patience = int(train_setting(train, "patience"))
        self.metric = str(train_setting(train, "patience_metric"))
        self.d_wins_steps = int(train_setting(train, "stop_d_wins_steps"))
        self.collapse_fraction = float(train_setting(train, "stop_collapse_fraction"))
        self.budget = int(train["steps"])
        state = dict(state or {})
        best = state.get("best")
        self.best: float = float(best) if isinstance(best, (int, float)) else math.inf
        self.best_step: int | None = state.get("best_step")
        self.evals_since_best = int(state.get("evals_since_best", 0))
        self.d_wins_run = int(state.get("d_wins_run", 0))
        self.fired: str | None = state.get("fired")
        if self.fired and self.budget > int(state.get("budget", self.budget)):
            # Extended past its stop: fresh counts (the best stays the one to beat).
            self.fired, self.evals_since_best, self.d_wins_run = None, 0, 0

    @property
    def wants_diversity(self) -> bool:
        """Whether evaluations must measure the generated features' spread."""
        return self.collapse_fraction > 0

    def after_step(self, step: int, values: Mapping[str, float]) -> str | None:
        """Count one step's ``disc/accuracy``; the reason to stop, if this step makes one."""
        if not self.d_wins_steps or self.fired:
            return None
        won = values.get("disc/accuracy", 0.0) >= 1.0
        self.d_wins_run = self.d_wins_run + 1 if won else 0
        if self.d_wins_run >= self.d_wins_steps:
            first = step - self.d_wins_run + 1
            return self._fire(step, f"the discriminator won outright (accuracy 100 %) for {self.d_wins_run} steps "
                                    f"in a row (steps {first} to {step})")
        return None

    def after_eval(self, step: int, metrics: Mapping[str, float], diversity: float | None = None) -> str | None:
        """Count one evaluation; the reason to stop, if it makes one."""
        if self.fired:
            return None
        if self.collapse_fraction and diversity is not None and diversity < self.collapse_fraction:
            return self._fire(step, f"generator collapse: diversity {diversity:.2f} of the real data's at step {step}, "
                                    f"under {self.collapse_fraction:g}")
        if not self.patience:
            return None
        value = metrics.get(self.metric, math.nan)
        if math.isfinite(value) and value < self.best:
            self.best, self.best_step, self.evals_since_best = float(value), step, 0
            return None
        self.evals_since_best += 1
        if self.evals_since_best >= self.patience:
            best = f"best {self.best:.4g} at step {self.best_step}" if self.best_step is not None else "none finite"
            return self._fire(step, f"no {self.metric} improvement in {self.evals_since_best} evaluations ({best})")
        return None

    def _fire(self, step: int, reason: str) -> str | None:
        # The last step is the end anyway: the run succeeded, whatever the counts say.
        if step >= self.budget:
            return None
        self.fired = reason
        return reason

    def state(self) -> dict[str, Any]:
        """What a checkpoint stores: the counts, the stop that fired and the budget it fired under."""
        return {"best": self.best if math.isfinite(self.best) else None, "best_step": self.best_step,
                "evals_since_best": self.evals_since_best, "d_wins_run": self.d_wins_run,
                "fired": self.fired, "budget": self.budget}
