"""Differentiable image transforms in ``keras.ops``, shared by the built-in augmentations.

Images are ``(B, H, W, C)`` in ``[-1, 1]``. Every transform keeps shape and
dtype and is differentiable with respect to the images: geometric ones
gather pixels (the gradient scatters back), colour ones are affine per image.
Per-image random values come from ``ctx.next_seed()``, one seed per draw.
"""

from __future__ import annotations

from typing import Any

from ganlab.specs import AugmentContext


def uniform(ctx: AugmentContext, batch: int, low: float, high: float) -> Any:
    """One float32 value per image in ``[low, high)``, shaped ``(B, 1, 1, 1)``."""
    import keras

    return keras.random.uniform((batch, 1, 1, 1), low, high, dtype="float32", seed=ctx.next_seed())


def normal(ctx: AugmentContext, batch: int, stddev: float) -> Any:
    import keras

    return keras.random.normal((batch, 1, 1, 1), 0.0, stddev, dtype="float32", seed=ctx.next_seed())


def randint(ctx: AugmentContext, batch: int, low: int, high: int) -> Any:
    """One int32 per image in ``[low, high)``, shaped ``(B,)``."""
    import keras

    return keras.random.randint((batch,), low, high, dtype="int32", seed=ctx.next_seed())


def chosen(ctx: AugmentContext, batch: int, p: Any) -> Any:
    """A ``(B, 1, 1, 1)`` boolean: true for each image with probability ``p``."""
    import keras

    return keras.random.uniform((batch, 1, 1, 1), dtype="float32", seed=ctx.next_seed()) < p


def cast_like(value: Any, x: Any) -> Any:
    import keras

    return keras.ops.cast(value, x.dtype)


def translate(x: Any, dy: Any, dx: Any, *, reflect: bool) -> Any:
    """Shift each image by whole pixels ``(dy[b], dx[b])``.

    Pixels shifted in from outside are the mirror image of the border
    (``reflect``, as ADA does) or 0, mid-grey in ``[-1, 1]`` (as DiffAugment does).
    """
    import keras

    ops = keras.ops
    b, h, w, c = x.shape
    rows = ops.arange(h, dtype="int32")[None, :] - dy[:, None]  # the source row of each target row
    cols = ops.arange(w, dtype="int32")[None, :] - dx[:, None]
    if reflect:
        # Mirror about both edges; valid for shifts below the image size.
        rows = (h - 1) - ops.abs((h - 1) - ops.abs(rows))
        cols = (w - 1) - ops.abs((w - 1) - ops.abs(cols))
    else:
        inside = ops.logical_and(rows >= 0, rows < h)[:, :, None, None] & ops.logical_and(cols >= 0, cols < w)[:, None, :, None]
        rows, cols = ops.clip(rows, 0, h - 1), ops.clip(cols, 0, w - 1)
    x = ops.take_along_axis(x, ops.broadcast_to(rows[:, :, None, None], (b, h, w, c)), axis=1)
    x = ops.take_along_axis(x, ops.broadcast_to(cols[:, None, :, None], (b, h, w, c)), axis=2)
    if not reflect:
        x = x * cast_like(inside, x)
    return x


def rotate90(x: Any) -> Any:
    """Every image turned a quarter turn (square images only)."""
    import keras

    return keras.ops.flip(keras.ops.transpose(x, (0, 2, 1, 3)), axis=1)


def mean_over(x: Any, axes: tuple[int, ...]) -> Any:
    import keras

    return keras.ops.mean(x, axis=axes, keepdims=True)


def split_list(value: str) -> list[str]:
    """``"color+translation"`` -> ``["color", "translation"]``; a comma works too.

    ``+`` is the separator to use on the command line, where a comma in
    ``--set`` makes a sweep: ``--set augment.policy=color,color+cutout`` queues two runs.
    """
    return [item.strip() for item in value.replace(",", "+").split("+") if item.strip()]


def check_names(what: str, value: str, allowed: tuple[str, ...]) -> str | None:
    """Why a ``+`` list of names is not a subset of ``allowed``, or None."""
    from ganlab.params import suggest

    items = [item.strip() for item in value.replace(",", "+").split("+")]
    if not all(items):
        return (f"{what} {value!r} has an empty item; give one or more of {', '.join(allowed)} "
                f"joined by single '+', e.g. {'+'.join(allowed[:2])}")
    names = items
    for name in names:
        if name not in allowed:
            return (f"{what} {name!r} does not exist{suggest(name, allowed)} "
                    f"(use one or more of {', '.join(allowed)} joined by '+')")
    return None
