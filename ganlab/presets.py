"""Named presets: a recipe measured to work, expanded into ordinary settings before validation.

A preset is only a shorthand: ``--preset small-data`` fills in an
augmentation and some ``--set`` values, and the stored experiment holds those
settings like any others (``queue show`` prints them; nothing stored refers
to the preset). What the user gives on the command line wins over the preset,
so a preset is a starting point, not a lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ganlab.config import DEFAULT_AUGMENT
from ganlab.errors import ConfigError


@dataclass(frozen=True)
class Preset:
    """One recipe: the augmentation plugin and the settings it stands for."""

    name: str
    description: str
    augment: str = DEFAULT_AUGMENT
    sets: Mapping[str, Any] = field(default_factory=dict)  # --set keys (section-prefixed) -> values

    def summary(self) -> str:
        """``--augment X --set k=v ...``: the options the preset stands for, as a user would type them."""
        parts = [f"--augment {self.augment}"] if self.augment != DEFAULT_AUGMENT else []
        parts += [f"--set {k}={v}" for k, v in self.sets.items()]
        return " ".join(parts)


# The figures behind each recipe are in docs/performance.md ("Recipes on digits 32x32").
PRESETS: dict[str, Preset] = {
    p.name: p for p in (
        Preset(
            "small-data",
            "DiffAugment on what D sees and an EMA generator for evaluation: for data sets of a few thousand images",
            augment="diffaugment",
            sets={"train.ema": 0.999},
        ),
    )
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; a ConfigError listing the presets otherwise."""
    preset = PRESETS.get(name)
    if preset is None:
        known = ", ".join(sorted(PRESETS))
        raise ConfigError(f"--preset {name!r} is not a preset; choose one of: {known} (see docs/training.md#presets)")
    return preset


def _bare(key: str) -> str:
    # "train.ema" and "ema" name the same setting; the user's spelling decides which one the preset yields to.
    return key.rpartition(".")[2]


def merge_preset(
    preset: Preset, augment_given: bool, sets: Mapping[str, tuple[Any, ...]]
) -> tuple[tuple[str, ...] | None, dict[str, tuple[Any, ...]]]:
    """The preset's augmentation (``None`` when the user chose one) and its settings under the user's ``sets``.

    A setting the user gave, under any spelling of its key, is left to the user.
    """
    given = {_bare(k) for k in sets}
    merged: dict[str, tuple[Any, ...]] = {k: (v,) for k, v in preset.sets.items() if _bare(k) not in given}
    merged.update(sets)
    return (None if augment_given else (preset.augment,)), merged


__all__ = ["PRESETS", "Preset", "get_preset", "merge_preset"]
