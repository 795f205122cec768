"""Bilinear resize exactly as TensorFlow 1's ``ResizeBilinear`` op inside the FID Inception graph.

That op (``align_corners=False``, before ``half_pixel_centers`` existed) maps
output pixel ``i`` to input coordinate ``i * in / out``: no half-pixel offset,
so the image shifts by up to half an input pixel towards the top left, and no
antialiasing, so a downscale skips pixels instead of averaging them. PyTorch's
``interpolate(bilinear, align_corners=False)`` and ``tf.image.resize`` use
half-pixel centres instead, which is one reason pytorch-fid and TF FID differ
slightly. Numpy here, so the Keras backbone sees the same pixels on every
backend as the TF graph feeds itself.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RESIZE_METHOD", "bilinear_weights", "resize_bilinear_tf1"]

RESIZE_METHOD = "bilinear, TF1 ResizeBilinear (align_corners=False, half_pixel_centers=False), no antialias"


def bilinear_weights(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` interpolation matrix of TF1's legacy bilinear mapping along one axis."""
    src = np.arange(n_out, dtype=np.float64) * (n_in / n_out)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    w = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(w, (rows, lo), 1.0 - frac)
    np.add.at(w, (rows, hi), frac)  # at the last input pixel lo == hi and the weights add to 1
    return w


def resize_bilinear_tf1(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(N, H, W, C)`` -> ``(N, size[0], size[1], C)`` float32."""
    images = np.asarray(images, dtype=np.float32)
    n, h, w, c = images.shape
    oh, ow = size
    if (h, w) == (oh, ow):
        return images
    wh = bilinear_weights(h, oh).astype(np.float32)
    ww = bilinear_weights(w, ow).astype(np.float32)
    return np.einsum("oh,nhwc,pw->nopc", wh, images, ww, optimize=True)
