"""Checks of the built-in augmentations run on the active backend (TensorFlow here, JAX in a child process)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ganlab.registry import Registry
from ganlab.training.augment import Augment

# Every policy and transform alone, and the defaults; ADA at p = 1 so every transform runs.
CASES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("none", {}),
    ("diffaugment", {}),
    ("diffaugment", {"policy": "color"}),
    ("diffaugment", {"policy": "translation"}),
    ("diffaugment", {"policy": "cutout"}),
    ("ada", {}),
    *(("ada", {"transforms": t}) for t in ("xflip", "rotate90", "translate", "brightness", "contrast", "saturation")),
)
SHAPES = ((4, 8, 8, 1), (4, 8, 8, 3))
DTYPES = ("float32", "bfloat16")
# Under JAX each case compiles: the defaults (every policy and transform chained) cover the code,
# on grey and colour images, and once under bfloat16.
JAX_RUNS = (
    *((("diffaugment", {}), shape, "float32") for shape in SHAPES),
    *((("ada", {}), shape, "float32") for shape in SHAPES),
    (("ada", {}), SHAPES[1], "bfloat16"),
)


def augment(registry: Registry, name: str, overrides: dict[str, Any]) -> Augment:
    spec = registry.augmentation(name)
    params = {p.name: p.default for p in spec.params}
    params.update(overrides)
    return Augment(spec, params)


def images(shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, shape).astype("float32")


def augmented_and_gradient(aug: Augment, x: Any, p: Any, next_seed: Callable[[], Any]) -> tuple[Any, Any]:
    """``aug(x)`` and the gradient of ``sum(w * aug(x))`` with respect to ``x`` (``w`` fixed, random)."""
    import keras

    from ganlab.training.autodiff import input_gradient

    w = keras.ops.convert_to_tensor(np.random.default_rng(1).normal(size=x.shape).astype("float32"))
    y = aug.apply(x, next_seed, p)
    grad = input_gradient(lambda t: keras.ops.cast(aug.apply(t, next_seed, p), "float32") * w, x)
    return y, grad


def summary(x: Any, y: Any, grad: Any, dtype: str) -> dict[str, Any]:
    """What the tests assert, as plain values (so a child process can print them)."""
    import keras

    x_np = np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(x, "float32")))
    y_np = np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(y, "float32")))
    g_np = np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(grad, "float32")))
    return {
        "shape": list(y.shape),
        "dtype": str(keras.backend.standardize_dtype(y.dtype)),
        "wanted_dtype": dtype,
        "grad_shape": list(g_np.shape),
        "grad_finite": bool(np.isfinite(g_np).all()),
        "grad_nonzero": bool(np.abs(g_np).sum() > 0),
        "changed": bool(np.abs(y_np - x_np).max() > 1e-3),
        "output_finite": bool(np.isfinite(y_np).all()),
    }
