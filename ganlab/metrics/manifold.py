"""k-NN manifold metrics: precision and recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et al. 2020).

Each real sample's k-NN radius (distance to its k-th nearest other real
sample) makes a ball; the union of the balls estimates the real manifold,
and likewise for the generated samples.

* precision: share of generated samples inside some real ball;
* recall: share of real samples inside some generated ball;
* density: real balls containing each generated sample, summed over the
  generated samples, divided by ``k`` times their number (1 on average when
  the two sets match; above 1 when fakes crowd the dense regions);
* coverage: share of real samples whose ball holds at least one generated sample.

"Inside" is strict (distance < radius), as in Naeem et al.'s reference code.
Written in ``keras.ops`` so the distances run on the accelerator of the
active backend; the distance matrices are built a block of rows at a time,
so memory stays at ``block × N`` entries whatever the sample count.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["DEFAULT_BLOCK_ENTRIES", "manifold_scores"]

#: Entries per block of a distance matrix (float32: 128 MB), bounding memory at any sample count.
DEFAULT_BLOCK_ENTRIES = 1 << 25


def _sq_dists(ops: Any, a: Any, b: Any, b_sq: Any) -> Any:
    """Squared Euclidean distances ``(len(a), len(b))``; clipped at 0 against round-off."""
    a_sq = ops.sum(a * a, axis=1, keepdims=True)
    return ops.maximum(a_sq + b_sq[None, :] - 2.0 * ops.matmul(a, ops.transpose(b)), 0.0)


def _blocks(n_rows: int, n_cols: int, entries: int) -> list[tuple[int, int]]:
    step = max(1, entries // max(n_cols, 1))
    return [(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]


def _knn_radii_sq(ops: Any, x: Any, n: int, k: int, entries: int) -> Any:
    """Squared distance of each row of ``x`` to its k-th nearest other row."""
    x_sq = ops.sum(x * x, axis=1)
    out = []
    for lo, hi in _blocks(n, n, entries):
        d = _sq_dists(ops, x[lo:hi], x, x_sq)
        # k + 1 smallest: the row itself (distance 0) comes first.
        smallest, _ = ops.top_k(-d, k + 1)
        out.append(-smallest[:, k])
    return ops.concatenate(out, axis=0)


def manifold_scores(real: np.ndarray, fake: np.ndarray, k: int = 3, block_entries: int = DEFAULT_BLOCK_ENTRIES) -> dict[str, float]:
    """``precision``, ``recall``, ``density`` and ``coverage`` of ``fake`` against ``real`` (``(N, D)`` features).

    One pass over the real x fake distances, a block of real rows at a time,
    gathers all four.
    """
    import keras
    from keras import ops

    real = np.asarray(real, dtype=np.float32)
    fake = np.asarray(fake, dtype=np.float32)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake must be (N, D) features of one D, got {real.shape} and {fake.shape}")
    n, m = len(real), len(fake)
    if min(n, m) <= k:
        raise ValueError(f"k-NN metrics with k={k} need more than {k} real and generated samples, got {n} and {m}")
    if not (np.isfinite(real).all() and np.isfinite(fake).all()):
        raise ValueError("features contain NaN or infinite values (did the generator diverge?)")
    dtype = "float32"
    r = keras.ops.convert_to_tensor(real, dtype=dtype)
    f = keras.ops.convert_to_tensor(fake, dtype=dtype)
    real_radii = _knn_radii_sq(ops, r, n, k, block_entries)
    fake_radii = _knn_radii_sq(ops, f, m, k, block_entries)
    f_sq = ops.sum(f * f, axis=1)
    inside_counts = ops.zeros((m,), dtype=dtype)  # real balls holding each fake
    recalled = covered = 0.0
    for lo, hi in _blocks(n, m, block_entries):
        d = _sq_dists(ops, r[lo:hi], f, f_sq)
        inside = ops.cast(d < real_radii[lo:hi, None], dtype)
        inside_counts = inside_counts + ops.sum(inside, axis=0)
        covered += float(ops.sum(ops.cast(ops.min(d, axis=1) < real_radii[lo:hi], dtype)))
        recalled += float(ops.sum(ops.cast(ops.any(d < fake_radii[None, :], axis=1), dtype)))
    counts = np.asarray(keras.ops.convert_to_numpy(inside_counts), dtype=np.float64)
    return {
        "precision": float(np.mean(counts > 0)),
        "recall": recalled / n,
        "density": float(counts.sum() / (k * m)),
        "coverage": covered / n,
    }
