"""Scoring a run with its metric plugins: current values, the real-vs-real floor, the best so far, the cards."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ganlab.specs import ImageData, MetricSpec


class MetricsTracker:
    """Evaluates generated images and remembers the best value of each score.

    Args:
        data: the training images (the suite draws its real samples from them).
        n_samples: generated samples per evaluation (``eval_samples``).
        seed: the experiment seed (fixes the real subsets).
        state: what :meth:`state` returned before a resume.
        metrics: the metric specs to compute (default: the built-in ``fd`` and ``kid``).
            The first output of the first metric decides the "best" checkpoint.
    """

    def __init__(self, data: ImageData, n_samples: int, seed: int, state: Mapping[str, Any] | None = None,
                 metrics: Sequence[MetricSpec] | None = None) -> None:
        if metrics is None:
            from ganlab.builtin.metrics import fd_metric, kid_metric

            metrics = [fd_metric(), kid_metric()]
        self.data = data
        self.n_samples = n_samples
        self.seed = seed
        self.metrics = list(metrics)
        self.lower_is_better = {out: m.lower_is_better for m in self.metrics for out in m.outputs}
        self.primary = self.metrics[0].outputs[0]
        state = dict(state or {})
        self.last: dict[str, float] = dict(state.get("last", {}))
        self.best: dict[str, float] = dict(state.get("best", {}))
        self.floor: dict[str, float] = dict(state.get("floor", {}))
        self.protocol: dict[str, Any] = dict(state.get("protocol", {}))
        self.cards: dict[str, dict[str, Any]] = dict(state.get("cards", {}))
        self._suite: Any = None

    def _get_suite(self) -> Any:
        if self._suite is None:
            from ganlab.metrics.suite import MetricSuite

            self._suite = MetricSuite(self.data, self.metrics, n_real=min(self.n_samples, len(self.data.images)),
                                      seed=self.seed)
        return self._suite

    def _better(self, name: str, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if name not in self.best:
            return True
        return value < self.best[name] if self.lower_is_better[name] else value > self.best[name]

    def evaluate(self, step: int, fake: np.ndarray) -> tuple[dict[str, float], bool]:
        """Score ``fake`` (NHWC in ``[-1, 1]``); returns the record to log and whether the primary score improved."""
        suite = self._get_suite()
        if not self.floor:
            self.floor = {k: float(v) for k, v in suite.floor().items()}
        scores = {k: float(v) for k, v in suite.evaluate(fake).items()}
        self.cards = suite.cards()
        self.protocol = self._protocol(suite)
        improved = self._better(self.primary, scores.get(self.primary, math.nan))
        for name in self.lower_is_better:
            value = scores.get(name, math.nan)
            if self._better(name, value):
                self.best[name] = value
        if improved:
            self.best["step"] = step
        self.last = {**scores, **{f"{k}_floor": v for k, v in self.floor.items()}}
        return dict(self.last), improved

    def diversity(self, fake: np.ndarray) -> float:
        """How widely ``fake``'s features spread, as a fraction of the real reference sample's.

        Measured on the features of the run's first metric (the classifier's by default). The
        spread is the root-mean-square distance of the features from their mean
        (``sqrt(trace(cov))``): near 1 for a generator as varied as the data, near 0 for one that
        draws the same image whatever its noise.
        """
        suite = self._get_suite()
        name = self.metrics[0].features.name
        real = _spread(suite.real[name])
        return _spread(suite.features(name, np.asarray(fake))) / real if real > 0 else float("nan")

    def _protocol(self, suite: Any) -> dict[str, Any]:
        # What every metric shares; the per-metric rest is in the cards.
        protocol: dict[str, Any] = {
            "n_real": int(len(suite.real_idx)),
            "n_fake": suite.n_fake,
            "seed": self.seed,
            "split": {"seed": self.seed, "train": int(len(suite.train_idx)), "holdout": int(len(suite.holdout_idx)),
                      "holdout_fraction": suite.holdout_fraction},
            "data_hash": suite.data_hash,
            "floor": dict(self.floor),
        }
        classifier = suite.extractors.get("classifier")
        net = getattr(classifier, "net", None)
        if net is not None:
            protocol.update({"feature_net": net.info.get("key"), "feature_dim": net.dim,
                             "label_source": net.info.get("label_source")})
        return protocol

    def scalars(self) -> dict[str, float]:
        """The TensorBoard scalars of the latest evaluation: ``metrics/*`` and ``best/*``."""
        out = {f"metrics/{k}": v for k, v in self.last.items()}
        out.update({f"best/{k}": self.best[k] for k in self.lower_is_better if k in self.best})
        return out

    def state(self) -> dict[str, Any]:
        """What a checkpoint stores so a resumed run keeps its bests, protocol and cards."""
        return {"last": self.last, "best": self.best, "floor": self.floor, "protocol": self.protocol,
                "cards": self.cards}


def _spread(feats: np.ndarray) -> float:
    centred = feats - feats.mean(axis=0, keepdims=True)
    return float(np.sqrt(np.mean(np.sum(centred**2, axis=1))))
