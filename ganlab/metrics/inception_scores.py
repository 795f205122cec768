"""Inception FID and KID: real statistics from the cache, generated features from the backbone.

The Fréchet distance and KID formulas are the ones in
:mod:`ganlab.metrics.distances`; only the features differ. Each result carries
the backbone card and the sample counts, so a score can always be traced to
how it was computed.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ganlab.metrics.distances import frechet_from_stats, gaussian_stats, kid
from ganlab.metrics.reference_stats import ReferenceStats, reference_stats

__all__ = ["default_kid_subset_size", "fid_from_features", "inception_fid", "inception_kid", "kid_from_features"]

KID_MAX_SUBSET = 1000


def default_kid_subset_size(n_real: int, n_fake: int) -> int:
    """Half the smaller set, at most 1000: below the sample count, so the 50 subsets differ and ``kid_std`` means something."""
    return max(2, min(KID_MAX_SUBSET, min(n_real, n_fake) // 2))


def fid_from_features(reference: ReferenceStats, fake_features: np.ndarray) -> dict[str, Any]:
    """``inception_fid`` of generated features against cached real statistics."""
    mu, cov = gaussian_stats(fake_features)
    return {
        "inception_fid": frechet_from_stats(reference.mu, reference.cov, mu, cov),
        "n_real": reference.n,
        "n_fake": int(len(fake_features)),
        "card": reference.card,
    }


def kid_from_features(
    reference: ReferenceStats,
    fake_features: np.ndarray,
    *,
    subsets: int = 50,
    subset_size: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """``inception_kid`` and ``inception_kid_std`` of generated features against the kept real rows."""
    real = reference.features
    size = subset_size or default_kid_subset_size(len(real), len(fake_features))
    mean, std = kid(real, fake_features, subsets=subsets, subset_size=size, seed=seed)
    return {
        "inception_kid": mean,
        "inception_kid_std": std,
        "kid_subsets": subsets,
        "kid_subset_size": min(size, len(real), len(fake_features)),
        "n_real": int(len(real)),
        "n_fake": int(len(fake_features)),
        "card": reference.card,
    }


def inception_fid(
    real_images: np.ndarray,
    fake_images: np.ndarray,
    backbone: Any,
    *,
    cache_dir: str | os.PathLike | None = None,
    data_hash: str | None = None,
    batch_size: int = 50,
) -> dict[str, Any]:
    """FID on Inception pool features: ``{"inception_fid", "n_real", "n_fake", "card"}``."""
    ref = reference_stats(real_images, backbone, cache_dir=cache_dir, data_hash=data_hash, batch_size=batch_size)
    return fid_from_features(ref, backbone.features(fake_images, batch_size=batch_size))


def inception_kid(
    real_images: np.ndarray,
    fake_images: np.ndarray,
    backbone: Any,
    *,
    subsets: int = 50,
    subset_size: int | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    data_hash: str | None = None,
    batch_size: int = 50,
) -> dict[str, Any]:
    """KID on Inception pool features: ``{"inception_kid", "inception_kid_std", "kid_subset_size", ...}``."""
    ref = reference_stats(real_images, backbone, cache_dir=cache_dir, data_hash=data_hash, batch_size=batch_size)
    fake = backbone.features(fake_images, batch_size=batch_size)
    return kid_from_features(ref, fake, subsets=subsets, subset_size=subset_size, seed=seed)
