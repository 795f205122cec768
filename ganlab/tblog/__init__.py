"""TensorBoard without TensorFlow: event files, image grids, reading them back, launching TensorBoard.

The writer's names are loaded on first use rather than here: ``ganlab.tblog.launcher``
serves a command that every ``ganlab`` start imports, and must not pull TensorBoard's
protobufs in with it. ``read`` pulls in TensorBoard's reader, which the trainer does not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ganlab.tblog.grid import image_grid, save_png, to_uint8
    from ganlab.tblog.writer import RunWriter

__all__ = ["RunWriter", "image_grid", "save_png", "to_uint8"]

_HOMES = {"RunWriter": "writer", "image_grid": "grid", "save_png": "grid", "to_uint8": "grid"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
