"""DiffAugment (Zhao et al. 2020, arXiv:2006.10738): the same random colour, translation and cutout on real and fake."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ganlab.builtin.augmentations import transforms as t
from ganlab.params import Param
from ganlab.specs import AugmentationSpec, AugmentContext

POLICIES = ("color", "translation", "cutout")

PARAMS = (
    Param("policy", str, "+".join(POLICIES), "policies to apply, joined by '+', in order: " + ", ".join(POLICIES)),
    Param("brightness", float, 0.5, "color: add U(-b, b) to every pixel of an image", low=0.0, high=2.0),
    Param("saturation", float, 1.0, "color: scale the distance from the channel mean by U(1-s, 1+s)", low=0.0, high=1.0),
    Param("contrast", float, 0.5, "color: scale the distance from the image mean by U(1-c, 1+c)", low=0.0, high=1.0),
    Param("translation", float, 0.125, "translation: shift by up to this fraction of the size, zero-padded", low=0.0, high=0.5),
    Param("cutout", float, 0.5, "cutout: side of the zeroed square, as a fraction of the size", low=0.0, high=1.0),
)


def check(params: Mapping[str, Any]) -> str | None:
    return t.check_names("policy", params["policy"], POLICIES)


def _color(x: Any, ctx: AugmentContext) -> Any:
    p, b = ctx.params, x.shape[0]
    x = x + t.cast_like(t.uniform(ctx, b, -p["brightness"], p["brightness"]), x)
    if x.shape[-1] > 1:  # a grey image has no saturation to change
        mean = t.mean_over(x, (3,))
        x = (x - mean) * t.cast_like(t.uniform(ctx, b, 1.0 - p["saturation"], 1.0 + p["saturation"]), x) + mean
    mean = t.mean_over(x, (1, 2, 3))
    return (x - mean) * t.cast_like(t.uniform(ctx, b, 1.0 - p["contrast"], 1.0 + p["contrast"]), x) + mean


def _translation(x: Any, ctx: AugmentContext) -> Any:
    b, h, w = x.shape[0], x.shape[1], x.shape[2]
    sy, sx = int(h * ctx.params["translation"] + 0.5), int(w * ctx.params["translation"] + 0.5)
    if sy == 0 and sx == 0:
        return x
    return t.translate(x, t.randint(ctx, b, -sy, sy + 1), t.randint(ctx, b, -sx, sx + 1), reflect=False)


def _cutout(x: Any, ctx: AugmentContext) -> Any:
    import keras

    ops = keras.ops
    b, h, w = x.shape[0], x.shape[1], x.shape[2]
    ch, cw = int(h * ctx.params["cutout"] + 0.5), int(w * ctx.params["cutout"] + 0.5)
    if ch == 0 or cw == 0:
        return x
    top = t.randint(ctx, b, -(ch // 2), h - ch // 2)  # the square may hang over an edge, as in the paper
    left = t.randint(ctx, b, -(cw // 2), w - cw // 2)
    rows = ops.arange(h, dtype="int32")[None, :] - top[:, None]
    cols = ops.arange(w, dtype="int32")[None, :] - left[:, None]
    in_rows = ops.logical_and(rows >= 0, rows < ch)[:, :, None, None]
    in_cols = ops.logical_and(cols >= 0, cols < cw)[:, None, :, None]
    return x * t.cast_like(ops.logical_not(ops.logical_and(in_rows, in_cols)), x)


_APPLY = {"color": _color, "translation": _translation, "cutout": _cutout}


def apply(x: Any, ctx: AugmentContext) -> Any:
    for policy in t.split_list(ctx.params["policy"]):
        x = _APPLY[policy](x, ctx)
    return x


SPEC = AugmentationSpec(
    name="diffaugment",
    description="DiffAugment: random colour, translation and cutout on everything D sees",
    apply=apply,
    params=PARAMS,
    reference="Zhao et al. 2020, Differentiable Augmentation for Data-Efficient GAN Training, arXiv:2006.10738",
    check=check,
)
