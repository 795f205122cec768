"""Noise batches and chunked generation, shared by training, metrics and ``ganlab sample``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# Stream ids for numpy generators seeded with (experiment seed, stream): distinct from the step noise.
GRID_STREAM = 1
EVAL_STREAM = 2
GRID_SIZE = 64

Generate = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]


def noise(n: int, latent_dim: int, num_classes: int | None, seed: int, stream: int) -> tuple[np.ndarray, np.ndarray | None]:
    """``n`` noise vectors (and labels cycling through the classes) from ``(seed, stream)``."""
    rng = np.random.default_rng([seed, stream])
    z = rng.standard_normal((n, latent_dim)).astype(np.float32)
    labels = None if num_classes is None else (np.arange(n) % num_classes).astype(np.int32)
    return z, labels


def generate_all(generate: Generate, z: np.ndarray, labels: np.ndarray | None, chunk: int) -> np.ndarray:
    """Run ``generate`` over ``z`` in chunks of exactly ``chunk`` rows (the last one padded), so it compiles once."""
    out = []
    for start in range(0, len(z), chunk):
        part = z[start : start + chunk]
        lab = None if labels is None else labels[start : start + chunk]
        n = len(part)
        if n < chunk:
            part = np.concatenate([part, np.zeros((chunk - n, z.shape[1]), z.dtype)])
            lab = None if lab is None else np.concatenate([lab, np.zeros(chunk - n, lab.dtype)])
        out.append(np.asarray(generate(part, lab), dtype=np.float32)[:n])
    return np.concatenate(out)
