"""Classifier FD and KID in one object: the built-in ``fd`` and ``kid`` metrics on a :class:`MetricSuite`.

The original protocol's interface (``protocol``, ``feature_net``), kept for
scripts and tests that score images directly. A training run uses a
:class:`ganlab.metrics.suite.MetricSuite` with the metrics its config names.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ganlab.metrics.featurenet import FeatureNetConfig
from ganlab.metrics.suite import MetricSuite, split_indices
from ganlab.specs import ImageData

__all__ = ["Evaluator", "split_indices"]


class Evaluator:
    """Fréchet distance and KID of generated images against one dataset.

    Args:
        data: the dataset (its labels train the feature net; without labels,
            k-means pseudo-labels do, and ``protocol["note"]`` says so).
        n_real: size of the real reference sample drawn from the training split.
        seed: seeds the split, the reference sample and KID's subsets.
        cache_dir: where feature nets are cached; see
            :func:`ganlab.metrics.featurenet.default_cache_dir`.
        holdout_fraction: share of the data held out for the floor (capped at ``n_real``).
        config: the feature net's configuration.
        kid_subsets, kid_subset_size: KID's subset averaging (size ``None``: ``min(500, n_real // 2)``).
    """

    def __init__(
        self,
        data: ImageData,
        *,
        n_real: int = 1000,
        seed: int = 0,
        cache_dir: str | os.PathLike | None = None,
        holdout_fraction: float = 0.25,
        config: FeatureNetConfig | None = None,
        kid_subsets: int = 50,
        kid_subset_size: int | None = None,
    ) -> None:
        from ganlab.builtin.metrics import fd_metric, kid_metric
        from ganlab.builtin.metrics import kid_subset_size as effective_size
        from ganlab.metrics.classifier import classifier_features

        self.config = config or FeatureNetConfig()
        features = classifier_features(self.config)
        self.suite = MetricSuite(data, [fd_metric(features), kid_metric(features)], n_real=n_real, seed=seed,
                                 cache_dir=cache_dir, holdout_fraction=holdout_fraction,
                                 params={"kid": {"subsets": kid_subsets, "subset_size": kid_subset_size or 0}})
        self.feature_net = self.suite.extractors["classifier"].net
        self._train_idx, self._holdout_idx = self.suite.train_idx, self.suite.holdout_idx
        real_idx = self.suite.real_idx
        data_hash = self.suite.data_hash
        self._kid = {"subsets": kid_subsets,
                     "subset_size": effective_size({"subset_size": kid_subset_size or 0}, len(real_idx))}
        info = self.feature_net.info
        note = ""
        if info.get("label_source", "labels") != "labels":
            note = (
                f"unlabelled dataset: the feature net was trained on {info['label_source']} pseudo-labels "
                f"(k-means with seed {self.config.seed} on the training split); its features group images "
                "by appearance, not by class"
            )
        self.protocol: dict[str, Any] = {
            "n_real": int(len(real_idx)),
            "n_fake": None,
            "seed": seed,
            "split": {
                "seed": seed,
                "train": int(len(self._train_idx)),
                "holdout": int(len(self._holdout_idx)),
                "holdout_fraction": holdout_fraction,
            },
            "data_hash": data_hash,
            "feature_net": info["key"],
            "feature_dim": self.feature_net.dim,
            "feature_net_config": self.config.to_json(),
            "label_source": info.get("label_source"),
            "train_accuracy": info.get("train_accuracy"),
            "holdout_accuracy": info.get("holdout_accuracy"),
            "kid": dict(self._kid),
            "note": note,
        }

    def floor(self) -> dict[str, float]:
        """Scores of held-out real images: what a perfect generator would get at this sample size."""
        floor = self.suite.floor()
        self.protocol["floor"] = dict(floor)
        return floor

    def evaluate(self, fake: np.ndarray) -> dict[str, float]:
        """``{"fd", "kid", "kid_std"}`` of generated images (NHWC, float in ``[-1, 1]`` or uint8)."""
        scores = self.suite.evaluate(fake)
        self.protocol["n_fake"] = self.suite.n_fake
        return scores
