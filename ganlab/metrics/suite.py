"""Scoring generated images with a set of metric plugins: one extraction per backbone, floors and cards.

One ``MetricSuite`` per run (dataset, seed, metrics): it cuts the data with
the seed into a training split (real reference sample, and the training set
of a backbone that learns) and a holdout split (the real-vs-real floor),
builds each backbone the metrics name once, and keeps the reference
sample's features. ``evaluate`` then costs one forward pass of the fakes per
backbone plus the metrics. See docs/metrics.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ganlab.errors import summary_line
from ganlab.metrics.featurenet import data_digest
from ganlab.params import resolve_params
from ganlab.specs import Extractor, FeatureContext, ImageData, MetricContext, MetricSpec

__all__ = ["MetricFailed", "MetricSuite", "split_indices"]


class MetricFailed(ValueError):
    """A metric could not score this evaluation (degenerate samples, a plugin's bug); the run goes on.

    A ValueError: the trainer reports a failed evaluation in the run's
    warnings and metrics.jsonl and keeps training.
    """

# Images handed to a backbone at once: bounds the float copy of the data (1000 32x32x3 images: 12 MB).
_IMAGE_BATCH = 1000


def holdout_size(n: int, n_real: int, holdout_fraction: float = 0.25) -> int:
    """Images held out for the floor (see :func:`split_indices`)."""
    return int(min(max(2, round(n * holdout_fraction)), n_real, n - 2))


def split_indices(n: int, n_real: int, seed: int, holdout_fraction: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """A fixed-seed permutation cut into ``(train, holdout)`` index arrays.

    The holdout gets ``holdout_fraction`` of the data but never more than
    ``n_real`` images: it only serves the floor, which compares it with the
    ``n_real`` reference images; the rest is worth more for training.
    """
    if n < 4:
        raise ValueError(f"need at least 4 images to split into train and holdout, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_hold = holdout_size(n, n_real, holdout_fraction)
    return order[n_hold:], order[:n_hold]


def _as_float(images: np.ndarray) -> np.ndarray:
    """Backbones see float images in [-1, 1] whatever the source (uint8 data, generated floats)."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 127.5 - 1.0
    return images


class MetricSuite:
    """The chosen metrics of generated images against one dataset.

    Args:
        data: the dataset.
        metrics: the metric specs to compute (their backbones are built here).
        n_real: size of the real reference sample drawn from the training split.
        seed: seeds the split, the reference sample and the metrics' own sampling.
        cache_dir: handed to backbones (see :class:`ganlab.specs.FeatureContext`).
        holdout_fraction: share of the data held out for the floor (capped at ``n_real``).
        params: ``metric name -> {parameter: value}``; missing values take the declared defaults.
    """

    def __init__(
        self,
        data: ImageData,
        metrics: Sequence[MetricSpec],
        *,
        n_real: int = 1000,
        seed: int = 0,
        cache_dir: str | os.PathLike | None = None,
        holdout_fraction: float = 0.25,
        params: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if n_real < 2:
            raise ValueError(f"n_real should be >= 2. Received: n_real={n_real}")
        if not metrics:
            raise ValueError("no metrics to compute")
        self.metrics = list(metrics)
        self.seed = seed
        self.holdout_fraction = holdout_fraction
        self.params = {m.name: resolve_params(m.params, (params or {}).get(m.name, {}), f"metric {m.name!r}")
                       for m in self.metrics}
        images = data.images
        self._images = images
        self.train_idx, self.holdout_idx = split_indices(len(images), n_real, seed, holdout_fraction)
        self.data_hash = data_digest(images, data.labels)
        context = FeatureContext(data, self.train_idx, self.holdout_idx, self.data_hash, seed,
                                 os.fspath(cache_dir) if cache_dir is not None else None)
        self.extractors: dict[str, Extractor] = {}
        for spec in self.metrics:
            name = spec.features.name
            if name not in self.extractors:
                self.extractors[name] = spec.features.build(context)
        # The training split is already a seeded permutation: its head is a random sample.
        self.real_idx = np.sort(self.train_idx[:n_real])
        self.real = {name: self.reference_features(name, images[self.real_idx]) for name in self.extractors}
        self._reference: dict[str, dict[str, Any]] = {m.name: {} for m in self.metrics}
        self._floor: dict[str, float] | None = None
        self.n_fake: int | None = None

    def reference_features(self, extractor: str, images: np.ndarray) -> np.ndarray:
        """Features of real images: from the extractor's own cache where it keeps one (a fixed network's
        real features are the same for every run on a data set), else computed like any others."""
        cached = getattr(self.extractors[extractor], "reference_features", None)
        if cached is None:
            return self.features(extractor, images)
        return np.asarray(cached(_as_float(images)))

    def features(self, extractor: str, images: np.ndarray) -> np.ndarray:
        """``extractor``'s features of ``images``, in batches."""
        parts = [np.asarray(self.extractors[extractor](_as_float(images[i : i + _IMAGE_BATCH])))
                 for i in range(0, len(images), _IMAGE_BATCH)]
        return np.concatenate(parts)

    def _scores(self, other: Mapping[str, np.ndarray]) -> dict[str, float]:
        from threadpoolctl import threadpool_limits

        out: dict[str, float] = {}
        shared: dict[str, dict[str, Any]] = {name: {} for name in self.extractors}
        # One BLAS thread: these matrices are small, and threads only fight over shared cores.
        with threadpool_limits(limits=1, user_api="blas"):
            for spec in self.metrics:
                name = spec.features.name
                ctx = MetricContext(self.params[spec.name], self.seed, shared[name], self._reference[spec.name])
                try:
                    values = spec.compute(self.real[name], other[name], ctx)
                except Exception as exc:  # noqa: BLE001 - a metric plugin's failure, named, must not end the run
                    raise MetricFailed(f"metric {spec.name!r} failed: {summary_line(exc)}") from exc
                out.update(_checked(spec, values))
        return out

    def floor(self) -> dict[str, float]:
        """Scores of held-out real images: what a perfect generator would get at this sample size."""
        if self._floor is None:
            held = self._images[np.sort(self.holdout_idx)]
            self._floor = self._scores({name: self.reference_features(name, held) for name in self.extractors})
        return dict(self._floor)

    def evaluate(self, fake: np.ndarray) -> dict[str, float]:
        """Every metric's outputs for generated images (NHWC, float in ``[-1, 1]`` or uint8)."""
        fake = np.asarray(fake)
        if fake.ndim != 4 or fake.shape[1:] != self._images.shape[1:]:
            want = ", ".join(map(str, self._images.shape[1:]))
            raise ValueError(f"fake images must have shape (N, {want}) like the dataset, got {fake.shape}")
        if len(fake) < 2:
            raise ValueError(f"need at least 2 fake images, got {len(fake)}")
        self.n_fake = int(len(fake))
        return self._scores({name: self.features(name, fake) for name in self.extractors})

    def cards(self) -> dict[str, dict[str, Any]]:
        """``metric name -> card``: everything that decides what its number means (see docs/metrics.md)."""
        from ganlab.metrics.card import metric_card

        return {spec.name: metric_card(spec, self.params[spec.name], self.extractors[spec.features.name].card(),
                                       n_real=len(self.real_idx), n_fake=self.n_fake,
                                       holdout=len(self.holdout_idx), holdout_fraction=self.holdout_fraction,
                                       data_hash=self.data_hash, seed=self.seed)
                for spec in self.metrics}


def _checked(spec: MetricSpec, values: Any) -> dict[str, float]:
    """A metric's result as plain floats; a plugin returning the wrong names is told which."""
    allowed = set(spec.outputs) | {f"{o}_std" for o in spec.outputs}
    if not isinstance(values, Mapping) or not set(spec.outputs) <= set(values) or not set(values) <= allowed:
        got = sorted(values) if isinstance(values, Mapping) else type(values).__name__
        raise MetricFailed(f"metric {spec.name!r} returned {got}; it must return {', '.join(spec.outputs)} "
                           "(and optionally <name>_std)")
    return {k: float(v) for k, v in values.items()}
