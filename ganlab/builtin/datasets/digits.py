"""The ``digits`` dataset: scikit-learn's 1,797 real 8x8 handwritten digits, upscaled.

The data ship inside scikit-learn (no download), which makes this the
project's default data set: it works offline, loads in well under a second
and is small enough for CPU smoke runs, yet it is real handwriting with ten
classes, so a working GAN visibly learns digit shapes.

Pixel values 0..16 become uint8 0..255 (``round(v * 255 / 16)``); the 8x8
images are then upscaled with Pillow's bicubic filter to ``size`` so that a
DCGAN built for 32x32 or 64x64 inputs can train on them.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ganlab.params import Param
from ganlab.specs import DataInfo, DatasetSpec, ImageData

NAME = "digits"
SIZES = (8, 16, 28, 32, 64)
CLASS_NAMES = tuple(str(i) for i in range(10))


def _shipped_csv() -> Path | None:
    """The CSV scikit-learn's ``load_digits`` reads, found without importing scikit-learn.

    Importing scikit-learn costs about a second, ten times the conversion
    itself; reading its data file directly keeps the default data set fast.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    return path if path.is_file() else None


@functools.lru_cache(maxsize=1)
def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    """``(images (1797, 8, 8) float in 0..16, labels (1797,))``."""
    path = _shipped_csv()
    if path is not None:
        # Same layout load_digits parses: 64 pixel columns, then the label.
        table = np.loadtxt(path, delimiter=",", dtype=np.float64)
        return table[:, :64].reshape(-1, 8, 8), table[:, 64].astype(np.int64)
    # The file moved in some scikit-learn version: take the public route.
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images, bunch.target


@functools.lru_cache(maxsize=len(SIZES))
def _converted(size: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    raw, target = _raw_digits()
    small = np.rint(raw * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    if size == 8:
        images = small
    else:
        images = np.stack(
            [np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BICUBIC)) for img in small]
        )
    images = np.ascontiguousarray(images[..., np.newaxis])
    labels = target.astype(np.int32)
    # Shared by every caller in this process: read-only so no one can corrupt the cache.
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load(params: Mapping[str, Any]) -> ImageData:
    """The digits at ``size`` x ``size``, one channel, labels 0..9."""
    images, labels = _converted(int(params.get("size", 32)))
    return ImageData(images, labels, CLASS_NAMES)


def describe(params: Mapping[str, Any]) -> DataInfo:
    """Shape facts from the raw 8x8 file, skipping the upscaling (queueing a sweep needs only these)."""
    _, labels = _raw_digits()
    size = int(params.get("size", 32))
    return DataInfo((size, size, 1), len(CLASS_NAMES), len(labels))


SPEC = DatasetSpec(
    name=NAME,
    description="1,797 real 8x8 handwritten digits shipped with scikit-learn, upscaled; offline default",
    load=load,
    describe=describe,
    params=(Param("size", int, 32, "output height and width in pixels (bicubic upscaling)", choices=SIZES),),
    reference=(
        "UCI Optical Recognition of Handwritten Digits (Alpaydin & Kaynak 1998), "
        "as shipped by scikit-learn (sklearn.datasets.load_digits)"
    ),
)
