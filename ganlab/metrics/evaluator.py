"""Scoring generated images against a dataset: the offline protocol.

One ``Evaluator`` per (dataset, seed): it splits the data with a fixed seed
into a training split (feature net, real reference sample) and a holdout
split (the real-vs-real floor), loads or trains the feature net, and keeps the
reference sample's features. ``evaluate`` then costs one forward pass of the
fakes plus the two distances. See docs/metrics.md.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ganlab.metrics.distances import frechet_from_stats, gaussian_stats, kid
from ganlab.metrics.featurenet import FeatureNetConfig, data_digest, load_or_train
from ganlab.specs import ImageData

__all__ = ["Evaluator", "split_indices"]


def split_indices(n: int, n_real: int, seed: int, holdout_fraction: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """A fixed-seed permutation cut into ``(train, holdout)`` index arrays.

    The holdout gets ``holdout_fraction`` of the data but never more than
    ``n_real`` images: it only serves the floor, which compares it with the
    ``n_real`` reference images; the rest is worth more for training.
    """
    if n < 4:
        raise ValueError(f"need at least 4 images to split into train and holdout, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_hold = int(min(max(2, round(n * holdout_fraction)), n_real, n - 2))
    return order[n_hold:], order[:n_hold]


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
        kid_subsets, kid_subset_size: KID's subset averaging.
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
        kid_subset_size: int = 500,
    ) -> None:
        if n_real < 2:
            raise ValueError(f"n_real should be >= 2. Received: n_real={n_real}")
        self.config = config or FeatureNetConfig()
        self._seed = seed
        self._kid = {"subsets": kid_subsets, "subset_size": kid_subset_size}
        images, labels = data.images, data.labels
        self._train_idx, self._holdout_idx = split_indices(len(images), n_real, seed, holdout_fraction)
        data_hash = data_digest(images, labels)
        self.feature_net = load_or_train(
            images, labels, self._train_idx, self._holdout_idx, self.config, cache_dir, data_hash=data_hash
        )
        # The training split is already a seeded permutation: its head is a random sample.
        real_idx = np.sort(self._train_idx[:n_real])
        self._real = self.feature_net.features(images[real_idx])
        self._real_stats = gaussian_stats(self._real)  # small: (dim,) and (dim, dim)
        self._images = images
        self._floor: dict[str, float] | None = None
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

    def _scores(self, feats: np.ndarray) -> dict[str, float]:
        from threadpoolctl import threadpool_limits

        # One BLAS thread: these matrices are small, and threads only fight over shared cores.
        with threadpool_limits(limits=1, user_api="blas"):
            mu, cov = gaussian_stats(feats)
            kid_mean, kid_std = kid(self._real, feats, seed=self._seed, **self._kid)
        return {"fd": frechet_from_stats(*self._real_stats, mu, cov), "kid": kid_mean, "kid_std": kid_std}

    def floor(self) -> dict[str, float]:
        """Scores of held-out real images: what a perfect generator would get at this sample size."""
        if self._floor is None:
            holdout = self.feature_net.features(self._images[np.sort(self._holdout_idx)])
            self._floor = self._scores(holdout)
            self.protocol["floor"] = dict(self._floor)
        return dict(self._floor)

    def diversity(self, fake: np.ndarray) -> float:
        """How widely ``fake``'s features spread, as a fraction of the real reference sample's.

        The spread is the root-mean-square distance of the features from their
        mean (``sqrt(trace(cov))``): near 1 for a generator as varied as the
        data, near 0 for one that draws the same image whatever its noise.
        """
        real = _spread(self._real)
        return _spread(self.feature_net.features(np.asarray(fake))) / real if real > 0 else float("nan")

    def evaluate(self, fake: np.ndarray) -> dict[str, float]:
        """``{"fd", "kid", "kid_std"}`` of generated images (NHWC, float in ``[-1, 1]`` or uint8)."""
        fake = np.asarray(fake)
        if fake.ndim != 4 or fake.shape[1:] != self._images.shape[1:]:
            want = ", ".join(map(str, self._images.shape[1:]))
            raise ValueError(f"fake images must have shape (N, {want}) like the dataset, got {fake.shape}")
        if len(fake) < 2:
            raise ValueError(f"need at least 2 fake images, got {len(fake)}")
        self.protocol["n_fake"] = int(len(fake))
        return self._scores(self.feature_net.features(fake))


def _spread(feats: np.ndarray) -> float:
    centred = feats - feats.mean(axis=0, keepdims=True)
    return float(np.sqrt(np.mean(np.sum(centred**2, axis=1))))
