"""Tiling a batch of images into one picture for TensorBoard or a PNG file."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

from ganlab.atomicfile import atomic_write

__all__ = ["image_grid", "save_png", "to_uint8"]


def to_uint8(images: np.ndarray) -> np.ndarray:
    """uint8 images unchanged; float images in ``[-1, 1]`` mapped to 0..255 (clipped, rounded)."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images must be uint8 or float in [-1, 1], got dtype {images.dtype}")
    # NaN from a diverged generator would become an arbitrary byte; show it as black instead.
    scaled = np.nan_to_num((images.astype(np.float32) + 1.0) * 127.5, nan=0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def image_grid(images: np.ndarray, ncols: int | None = None, pad: int = 2, pad_value: int = 0) -> np.ndarray:
    """Tile ``(N, H, W, C)`` images into one ``(rows*H + pad gaps, ...)`` uint8 picture.

    Args:
        images: uint8, or float in ``[-1, 1]`` (a generator's output); C is 1 or 3.
            Grey images stay one channel.
        ncols: images per row; by default ``ceil(sqrt(N))`` so the grid is near-square.
        pad: pixels of border around and between tiles.
        pad_value: grey level of the border.

    Returns:
        ``(H_grid, W_grid, C)`` uint8, with empty cells of the last row left as border.
    """
    images = to_uint8(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.shape[0] == 0:
        raise ValueError(f"images must be a non-empty (N, H, W, C) batch with C 1 or 3, got shape {images.shape}")
    if pad < 0:
        raise ValueError(f"pad should be >= 0. Received: pad={pad}")
    n, h, w, c = images.shape
    cols = int(ncols) if ncols is not None else math.ceil(math.sqrt(n))
    if cols < 1:
        raise ValueError(f"ncols should be >= 1. Received: ncols={ncols}")
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    grid = np.full((pad + rows * (h + pad), pad + cols * (w + pad), c), pad_value, dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + k * (w + pad)
        grid[top : top + h, left : left + w] = images[i]
    return grid


def save_png(grid: np.ndarray, path: str | os.PathLike) -> None:
    """Write an ``(H, W, C)`` uint8 image as PNG, atomically (no half-written file on a crash)."""
    grid = to_uint8(grid)
    if grid.ndim != 3 or grid.shape[-1] not in (1, 3):
        raise ValueError(f"grid must be (H, W, C) with C 1 or 3, got shape {grid.shape}")
    # Not durable: a preview is rewritten at every sample step, and a lost one costs nothing.
    with atomic_write(Path(path), durable=False) as fh:
        Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(fh, format="PNG")
