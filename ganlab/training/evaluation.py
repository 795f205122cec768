"""Scoring a run with ganlab.metrics: current values, the real-vs-real floor, and the best so far."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ganlab.config import METRICS
from ganlab.specs import ImageData

__all__ = ["METRICS", "MetricsTracker"]


class MetricsTracker:
    """Evaluates generated images and remembers the best value of each metric.

    Args:
        data: the training images (the evaluator draws its real samples from them).
        n_samples: generated samples per evaluation (``eval_samples``).
        seed: the experiment seed (fixes the evaluator's real subsets).
        state: what :meth:`state` returned before a resume.
    """

    def __init__(self, data: ImageData, n_samples: int, seed: int, state: Mapping[str, Any] | None = None) -> None:
        self.data = data
        self.n_samples = n_samples
        self.seed = seed
        state = dict(state or {})
        self.last: dict[str, float] = dict(state.get("last", {}))
        self.best: dict[str, float] = dict(state.get("best", {}))
        self.floor: dict[str, float] = dict(state.get("floor", {}))
        self.protocol: dict[str, Any] = dict(state.get("protocol", {}))
        self._evaluator: Any = None

    def _get_evaluator(self) -> Any:
        if self._evaluator is None:
            from ganlab.metrics.evaluator import Evaluator

            self._evaluator = Evaluator(self.data, n_real=min(self.n_samples, len(self.data.images)), seed=self.seed)
        return self._evaluator

    def evaluate(self, step: int, fake: np.ndarray) -> tuple[dict[str, float], bool]:
        """Score ``fake`` (NHWC in ``[-1, 1]``); returns the record to log and whether ``fd`` improved."""
        evaluator = self._get_evaluator()
        if not self.floor:
            self.floor = {k: float(v) for k, v in evaluator.floor().items()}
        scores = {k: float(v) for k, v in evaluator.evaluate(fake).items()}
        self.protocol = dict(evaluator.protocol)  # now with the sample sizes of this evaluation
        improved = math.isfinite(scores["fd"]) and scores["fd"] < self.best.get("fd", math.inf)
        for name in METRICS:
            value = scores.get(name, math.nan)
            if math.isfinite(value) and value < self.best.get(name, math.inf):
                self.best[name] = value
        if improved:
            self.best["step"] = step
        self.last = {**scores, **{f"{k}_floor": v for k, v in self.floor.items()}}
        return dict(self.last), improved

    def diversity(self, fake: np.ndarray) -> float:
        """The spread of ``fake``'s features over the real data's (see :meth:`Evaluator.diversity`)."""
        return float(self._get_evaluator().diversity(fake))

    def scalars(self) -> dict[str, float]:
        """The TensorBoard scalars of the latest evaluation: ``metrics/*`` and ``best/*``."""
        out = {f"metrics/{k}": v for k, v in self.last.items()}
        out.update({f"best/{k}": self.best[k] for k in METRICS if k in self.best})
        return out

    def state(self) -> dict[str, Any]:
        """What a checkpoint stores so a resumed run keeps its bests and protocol."""
        return {"last": self.last, "best": self.best, "floor": self.floor, "protocol": self.protocol}
