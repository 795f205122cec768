"""Built-in augmentations: ``none`` (the default), ``diffaugment`` and ``ada``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ganlab.builtin.augmentations import ada, diffaugment
from ganlab.hookspecs import hookimpl
from ganlab.specs import AugmentationSpec, AugmentContext


def _identity(images: Any, ctx: AugmentContext) -> Any:
    return images


NONE = AugmentationSpec(
    name="none",
    description="no augmentation: D sees the images as they are",
    apply=_identity,
)


@hookimpl
def register_augmentations(register: Callable[[AugmentationSpec], None]) -> None:
    register(NONE)
    register(diffaugment.SPEC)
    register(ada.SPEC)
