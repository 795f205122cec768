"""Checking an augmentation plugin: on a batch of random images, as the compiled step will call it.

It must keep shape and dtype, stay finite, draw its randomness only from the
seeds it is handed (same seeds, same images), and let gradients through (the
generator learns through it). An adaptive one is run at ``p = 1``, and at
``p = 0`` it should hand the images back unchanged.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np

from ganlab.plugin_check.report import CheckFailed, Report
from ganlab.registry import Registry
from ganlab.specs import AugmentContext

_BATCH = 8
_IMAGES = ((16, 16, 1), (16, 16, 3))


def check_augmentation(registry: Registry, name: str, params: Mapping[str, Any], report: Report) -> None:
    """Fill ``report``; raise CheckFailed at the first problem."""
    import keras

    spec = registry.augmentation(name)
    rng = np.random.default_rng(0)

    def run(images: Any, p: float | None, first_seed: int = 0) -> Any:
        # Plain integer seeds: they work eagerly and under a gradient on every backend.
        seeds = itertools.count(first_seed)
        ctx = AugmentContext(params, lambda: next(seeds), None if p is None else keras.ops.convert_to_tensor(p, "float32"))
        try:
            return spec.apply(images, ctx)
        except Exception as exc:  # noqa: BLE001 - the plugin's error, named in one line
            raise CheckFailed(f"augmentation {name!r}: apply failed on images of shape {tuple(images.shape)}: "
                              f"{type(exc).__name__}: {exc}") from exc

    p = 1.0 if spec.adaptive else None
    for shape in _IMAGES:
        images = keras.ops.convert_to_tensor(rng.uniform(-1, 1, (_BATCH, *shape)).astype("float32"))
        out = run(images, p)
        if tuple(out.shape) != tuple(images.shape) or keras.backend.standardize_dtype(out.dtype) != "float32":
            raise CheckFailed(f"augmentation {name!r} turns float32 images of shape {tuple(images.shape)} into "
                              f"{keras.backend.standardize_dtype(out.dtype)} of shape {tuple(out.shape)}; "
                              "it must keep shape and dtype")
        value = np.asarray(out)
        if not np.isfinite(value).all():
            raise CheckFailed(f"augmentation {name!r} returns non-finite values on images in [-1, 1]")
        if not np.array_equal(value, np.asarray(run(images, p))):
            raise CheckFailed(f"augmentation {name!r} gives different images for the same seeds; draw every "
                              "random number with seed=ctx.next_seed() (keras.random)")
        changed = float(np.mean(np.abs(value - np.asarray(images))))
        report.facts[f"on {shape}"] = f"shape and dtype kept, mean |change| {changed:.3g}"
    if spec.adaptive:
        unchanged = np.asarray(run(images, 0.0))
        report.facts["at p = 0"] = "identity" if np.array_equal(unchanged, np.asarray(images)) else (
            f"mean |change| {float(np.mean(np.abs(unchanged - np.asarray(images)))):.3g} (not the identity)")
    grad = _input_gradient(name, lambda x: run(x, p), images)
    norm = float(np.sqrt(np.sum(np.square(grad))))
    if not np.isfinite(norm) or norm == 0.0:
        raise CheckFailed(f"augmentation {name!r}: the gradient through it is {norm}; it must be differentiable "
                          "(keras.ops only, no numpy or casts to int on the images)")
    report.facts["gradient"] = f"norm {norm:.4g} through it (finite, non-zero)"


def _input_gradient(name: str, fn: Any, x: Any) -> np.ndarray:
    import keras

    from ganlab.training.autodiff import input_gradient

    # A weighted sum, so that a flip or a shift still leaves a gradient that is not all ones.
    weights = keras.ops.convert_to_tensor(np.linspace(-1, 1, int(np.prod(x.shape))).reshape(x.shape).astype("float32"))
    try:
        grad = input_gradient(lambda y: keras.ops.sum(fn(y) * weights), x)
    except CheckFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - the plugin's error, named in one line
        raise CheckFailed(f"augmentation {name!r} cannot be differentiated: {type(exc).__name__}: {exc}") from exc
    # TensorFlow answers None where no gradient path exists (rounding, a cast to int); JAX answers zeros.
    return np.zeros(tuple(x.shape), "float32") if grad is None else np.asarray(grad, "float64")
