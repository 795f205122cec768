"""Hook specifications: the public contract between ganlab and its plugins.

Each hook is handed a ``register`` callback; the plugin calls it once per
spec it provides. The engine owns the registry, so it can refuse a duplicate
name and say which two plugins clash. Implement a hook with
``@ganlab.hookimpl`` in a module or object registered as a plugin.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from ganlab.specs import ArchitectureSpec, AugmentationSpec, DatasetSpec, LossSpec, MetricSpec

PROJECT = "ganlab"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_architectures(register: Callable[[ArchitectureSpec], None]) -> None:
    """Call ``register(ArchitectureSpec(...))`` for each generator/discriminator pair you provide."""


@hookspec
def register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    """Call ``register(DatasetSpec(...))`` for each dataset you provide."""


@hookspec
def register_losses(register: Callable[[LossSpec], None]) -> None:
    """Call ``register(LossSpec(...))`` for each adversarial loss you provide."""


@hookspec
def register_augmentations(register: Callable[[AugmentationSpec], None]) -> None:
    """Call ``register(AugmentationSpec(...))`` for each differentiable augmentation you provide."""


@hookspec
def register_metrics(register: Callable[[MetricSpec], None]) -> None:
    """Call ``register(MetricSpec(...))`` for each evaluation metric you provide (computed on a FeatureSpec's features)."""
