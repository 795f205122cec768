"""Feature statistics of the real images, computed once per data set and backbone, cached on disk.

Inception features of thousands of real images take minutes on a CPU, and
they are the same for every run on a data set, so they are stored: the mean
and covariance (for FID) and up to ``keep`` feature rows (for KID), in one
``.npz`` under ``$GANLAB_CACHE_DIR/inception-stats`` (else
``~/.cache/ganlab/inception-stats``). The key hashes the images, the
backbone's card (weights SHA-256 included), the number of images and
``keep``, so different data, weights or counts never share an entry. Each file
also holds a SHA-256 of its own arrays: a truncated or altered file is
recomputed and overwritten, never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganlab.atomicfile import atomic_write
from ganlab.metrics.distances import gaussian_stats
from ganlab.metrics.featurenet import data_digest

__all__ = ["ReferenceStats", "default_stats_dir", "reference_stats", "stats_key"]

# Bumped when what is stored, or how it is computed, changes.
STATS_VERSION = 1


@dataclass
class ReferenceStats:
    """Real-image feature statistics.

    Attributes:
        mu: ``(D,)`` feature mean.
        cov: ``(D, D)`` unbiased feature covariance.
        features: up to ``keep`` feature rows (a seeded subsample when there are more), for KID.
        n: how many images ``mu`` and ``cov`` were computed from.
        key: the cache key.
        card: the backbone's card.
        from_cache: whether these came from disk.
    """

    mu: np.ndarray
    cov: np.ndarray
    features: np.ndarray
    n: int
    key: str
    card: dict[str, Any]
    from_cache: bool = False


def default_stats_dir() -> Path:
    """``$GANLAB_CACHE_DIR/inception-stats``, else ``~/.cache/ganlab/inception-stats``."""
    root = os.environ.get("GANLAB_CACHE_DIR")
    return Path(root) / "inception-stats" if root else Path.home() / ".cache" / "ganlab" / "inception-stats"


def stats_key(data_hash: str, card: dict[str, Any], n: int, keep: int) -> str:
    payload = json.dumps({"data": data_hash, "card": card, "n": n, "keep": keep, "version": STATS_VERSION},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _checksum(mu: np.ndarray, cov: np.ndarray, features: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in (mu, cov, features):
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _load(path: Path, key: str, card: dict[str, Any]) -> ReferenceStats | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            stored_key, checksum = str(npz["key"]), str(npz["checksum"])
            mu, cov, features, n = npz["mu"], npz["cov"], npz["features"], int(npz["n"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # missing or damaged: computed again and overwritten
    d = mu.shape[0] if mu.ndim == 1 else -1
    if (
        stored_key != key
        or checksum != _checksum(mu, cov, features)
        or cov.shape != (d, d)
        or features.ndim != 2
        or features.shape[1] != d
    ):
        return None
    return ReferenceStats(mu, cov, features, n, key, card, from_cache=True)


def reference_stats(
    images: np.ndarray,
    backbone: Any,
    *,
    keep: int = 2000,
    cache_dir: str | os.PathLike | None = None,
    data_hash: str | None = None,
    batch_size: int = 50,
    seed: int = 0,
) -> ReferenceStats:
    """Statistics of ``backbone``'s features of all of ``images``, from the cache or computed and cached.

    Args:
        images: the real reference sample, ``(N, H, W, C)`` uint8 or float in ``[-1, 1]``.
        backbone: an object with ``features(images, batch_size)`` and ``card()``
            (:func:`ganlab.metrics.inception.load_inception`).
        keep: feature rows stored for KID; a seeded subsample when ``N`` is larger.
        cache_dir: the folder; :func:`default_stats_dir` by default.
        data_hash: a known hash of ``images`` (saves reading them again).
        batch_size: images per forward pass (bounds memory).
        seed: picks the kept rows.
    """
    if len(images) < 2:
        raise ValueError(f"reference statistics need at least 2 real images, got {len(images)}")
    directory = Path(cache_dir) if cache_dir is not None else default_stats_dir()
    card = backbone.card()
    key = stats_key(data_hash or data_digest(np.asarray(images), None), card, len(images), keep)
    path = directory / f"{key[:24]}.npz"
    cached = _load(path, key, card)
    if cached is not None:
        return cached

    feats = backbone.features(images, batch_size=batch_size)
    mu, cov = gaussian_stats(feats)
    if len(feats) > keep:
        feats = feats[np.sort(np.random.default_rng(seed).choice(len(feats), keep, replace=False))]
    features = np.ascontiguousarray(feats, dtype=np.float64)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        np.savez(f, key=np.array(key), checksum=np.array(_checksum(mu, cov, features)),
                 mu=mu, cov=cov, features=features, n=np.int64(len(images)))
    return ReferenceStats(mu, cov, features, len(images), key, card)
