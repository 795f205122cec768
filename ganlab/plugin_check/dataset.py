"""Checking a dataset plugin: load it, describe what it holds, save a grid of its first images."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ganlab.plugin_check.report import CheckFailed, Report
from ganlab.registry import Registry
from ganlab.specs import ImageData

GRID_IMAGES = 64


def check_dataset(registry: Registry, name: str, params: Mapping[str, Any], report: Report,
                  grid_path: str | None = None) -> None:
    """Fill ``report``; raise CheckFailed at the first problem. The grid goes to ``grid_path`` or a new temp file."""
    spec = registry.dataset(name)
    try:
        data = spec.load(params)
    except Exception as exc:  # noqa: BLE001 - DatasetUnavailable included: its message is the fix
        raise CheckFailed(f"dataset {name!r} cannot be loaded: {type(exc).__name__}: {exc}") from exc
    if not isinstance(data, ImageData):
        raise CheckFailed(f"dataset {name!r}: load returned a {type(data).__name__}; it must return ganlab.ImageData")
    images = data.images
    head = np.asarray(images[: min(len(images), 4096)])  # the range of a sample: a memmap stays on disk
    report.facts["images"] = f"{len(images)} of shape {data.image_shape}, dtype {images.dtype}"
    report.facts["value range"] = f"[{int(head.min())}, {int(head.max())}] (of the first {len(head)})"
    if data.labels is None:
        report.facts["labels"] = "none (unconditional architectures only)"
    else:
        present = len(np.unique(data.labels))
        names = f": {', '.join(data.class_names)}" if data.class_names else ""
        report.facts["labels"] = f"{data.num_classes} classes, {present} present{names}"
    if spec.describe is not None:
        _check_describe(name, spec.describe, params, data)
    if int(head.max()) == int(head.min()):
        raise CheckFailed(f"dataset {name!r}: every pixel of the first {len(head)} images is {int(head.min())}")
    report.facts["sample grid"] = str(_save_grid(name, np.asarray(images[:GRID_IMAGES]), grid_path))


def _check_describe(name: str, describe: Any, params: Mapping[str, Any], data: ImageData) -> None:
    """``describe`` is what 'queue add' trusts: it must agree with what ``load`` gives."""
    try:
        info = describe(params)
    except Exception as exc:  # noqa: BLE001
        raise CheckFailed(f"dataset {name!r}: describe failed: {type(exc).__name__}: {exc}") from exc
    loaded = data.info()
    if (tuple(info.image_shape), info.num_classes) != (loaded.image_shape, loaded.num_classes):
        raise CheckFailed(
            f"dataset {name!r}: describe says shape {tuple(info.image_shape)} with {info.num_classes} classes, "
            f"but load gives {loaded.image_shape} with {loaded.num_classes}; make them agree"
        )


def _save_grid(name: str, images: np.ndarray, grid_path: str | None) -> Path:
    from ganlab.tblog.grid import image_grid, save_png

    grid = image_grid(images)
    if grid_path is not None:
        path = Path(grid_path)
    else:
        # A new file of our own: a predictable name in a shared temp folder could be someone's planted link.
        fd, raw = tempfile.mkstemp(prefix=f"ganlab-check-{name}-", suffix=".png")
        os.close(fd)
        path = Path(raw)
    save_png(grid, path)
    return path


__all__ = ["check_dataset"]
