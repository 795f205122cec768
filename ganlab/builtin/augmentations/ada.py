"""ADA (Karras et al. 2020, arXiv:2006.06676): augment with probability p, raising p while D overfits.

Each transform below is applied to each image independently with
probability ``p`` (the same ``p`` for real and generated images):

* ``xflip``: mirror left-right;
* ``rotate90``: turn by 90, 180 or 270 degrees (square images only; skipped otherwise);
* ``translate``: shift by whole pixels, up to ``translate`` of the size, reflecting at the border;
* ``brightness``: add N(0, 0.2);
* ``contrast``: scale the distance from the image mean by 2^N(0, 0.5);
* ``saturation``: scale the distance from the channel mean by 2^N(0, 1) (colour images only).

After each discriminator update, ``r_t = E[sign(D(x_real))]`` over the
augmented real batch is compared with ``target``: above it, D is judged to
overfit and ``p`` rises, below it ``p`` falls, by ``batch / (speed_kimg * 1000)``
per update, so ``p`` can cross [0, 1] within ``speed_kimg`` thousand real images.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ganlab.builtin.augmentations import transforms as t
from ganlab.params import Param
from ganlab.specs import AugmentationSpec, AugmentContext

TRANSFORMS = ("xflip", "rotate90", "translate", "brightness", "contrast", "saturation")

PARAMS = (
    Param("target", float, 0.6, "the overfitting heuristic r_t that p steers toward", low=0.0, high=1.0),
    Param("speed_kimg", float, 100.0, "thousands of real images for p to move from 0 to 1", low=0.001, high=1e6),
    Param("p_init", float, 0.0, "probability p at step 0", low=0.0, high=1.0),
    Param("adaptive", bool, True, "adjust p from r_t (false: p stays at p_init)"),
    Param("transforms", str, "+".join(TRANSFORMS), "transforms joined by '+', in order: " + ", ".join(TRANSFORMS)),
    Param("translate", float, 0.125, "translate: largest shift as a fraction of the size", low=0.0, high=0.5),
)


def check(params: Mapping[str, Any]) -> str | None:
    return t.check_names("transforms", params["transforms"], TRANSFORMS)


def _flat(mask: Any, batch: int) -> Any:
    import keras

    return keras.ops.reshape(mask, (batch,))


def _xflip(x: Any, ctx: AugmentContext) -> Any:
    import keras

    return keras.ops.where(t.chosen(ctx, x.shape[0], ctx.p), keras.ops.flip(x, axis=2), x)


def _rotate90(x: Any, ctx: AugmentContext) -> Any:
    import keras

    if x.shape[1] != x.shape[2]:
        return x
    where = keras.ops.where
    quarter = t.rotate90(x)
    half = t.rotate90(quarter)
    k = t.randint(ctx, x.shape[0], 1, 4)[:, None, None, None]
    turned = where(k == 1, quarter, where(k == 2, half, t.rotate90(half)))
    return where(t.chosen(ctx, x.shape[0], ctx.p), turned, x)


def _translate(x: Any, ctx: AugmentContext) -> Any:
    import keras

    b, h, w = x.shape[0], x.shape[1], x.shape[2]
    sy, sx = int(h * ctx.params["translate"] + 0.5), int(w * ctx.params["translate"] + 0.5)
    if sy == 0 and sx == 0:
        return x
    on = _flat(t.chosen(ctx, b, ctx.p), b)
    dy = keras.ops.where(on, t.randint(ctx, b, -sy, sy + 1), 0)
    dx = keras.ops.where(on, t.randint(ctx, b, -sx, sx + 1), 0)
    return t.translate(x, dy, dx, reflect=True)


def _brightness(x: Any, ctx: AugmentContext) -> Any:
    import keras

    b = x.shape[0]
    shift = keras.ops.where(t.chosen(ctx, b, ctx.p), t.normal(ctx, b, 0.2), 0.0)
    return x + t.cast_like(shift, x)


def _scale_from_mean(x: Any, ctx: AugmentContext, axes: tuple[int, ...], log2_std: float) -> Any:
    import keras

    b = x.shape[0]
    factor = keras.ops.power(2.0, t.normal(ctx, b, log2_std))
    mean = t.mean_over(x, axes)
    # Selected rather than scaled by 1: at p = 0 the images come back bit for bit.
    return keras.ops.where(t.chosen(ctx, b, ctx.p), (x - mean) * t.cast_like(factor, x) + mean, x)


def _contrast(x: Any, ctx: AugmentContext) -> Any:
    return _scale_from_mean(x, ctx, (1, 2, 3), 0.5)


def _saturation(x: Any, ctx: AugmentContext) -> Any:
    return x if x.shape[-1] == 1 else _scale_from_mean(x, ctx, (3,), 1.0)


_APPLY = {"xflip": _xflip, "rotate90": _rotate90, "translate": _translate, "brightness": _brightness,
          "contrast": _contrast, "saturation": _saturation}


def apply(x: Any, ctx: AugmentContext) -> Any:
    for name in t.split_list(ctx.params["transforms"]):
        x = _APPLY[name](x, ctx)
    return x


def adapt(p: Any, real_logits: Any, params: Mapping[str, Any]) -> Any:
    """One adjustment of ``p`` from the sign of D's outputs on (augmented) real images."""
    import keras

    ops = keras.ops
    if not params["adaptive"]:
        return p
    r_t = ops.mean(ops.sign(ops.cast(real_logits, "float32")))
    step = real_logits.shape[0] / (float(params["speed_kimg"]) * 1000.0)
    return ops.clip(p + ops.sign(r_t - float(params["target"])) * step, 0.0, 1.0)


SPEC = AugmentationSpec(
    name="ada",
    description="ADA: flips, rotations, shifts and colour with a probability p steered by D's overfitting",
    apply=apply,
    params=PARAMS,
    reference="Karras et al. 2020, Training Generative Adversarial Networks with Limited Data, arXiv:2006.06676",
    check=check,
    adapt=adapt,
    initial_p=lambda params: float(params["p_init"]),
)
