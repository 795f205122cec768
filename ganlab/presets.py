"""Named presets: a recipe measured to work, expanded into ordinary settings before validation.

A preset is only a shorthand: ``--preset small-data`` fills in plugins
(loss, augmentation) and ``--set`` values, and the stored experiment holds those
settings like any others (``queue show`` prints them; nothing stored refers
to the preset). What the user gives on the command line wins over the preset,
so a preset is a starting point, not a lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ganlab.errors import ConfigError


@dataclass(frozen=True)
class Preset:
    """One recipe: the plugins and the settings it stands for (``None``: the preset leaves that choice alone)."""

    name: str
    description: str
    loss: str | None = None
    augment: str | None = None
    sets: Mapping[str, Any] = field(default_factory=dict)  # --set keys (section-prefixed) -> values

    def summary(self) -> str:
        """``--loss X --augment Y --set k=v ...``: the options the preset stands for, as a user would type them."""
        parts = [f"--{option} {value}" for option, value in (("loss", self.loss), ("augment", self.augment)) if value]
        parts += [f"--set {k}={v}" for k, v in self.sets.items()]
        return " ".join(parts)


# The figures behind each recipe are in docs/performance.md ("Recipes on digits 32x32").
PRESETS: dict[str, Preset] = {
    p.name: p for p in (
        Preset(
            "small-data",
            "the R1 penalty (gamma 0.1) with Adam at 4e-4 for both networks, non-saturating loss: the lowest best FD "
            "on the bundled digits 32x32 at 2,500 steps; R1 costs a second gradient pass through D on the real images",
            loss="non-saturating",
            sets={"loss.r1_gamma": 0.1, "train.lr_g": 4e-4, "train.lr_d": 4e-4},
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


@dataclass(frozen=True)
class PresetChoice:
    """What a preset adds to one command line: plugin names (``None``: the user's or the default) and settings."""

    loss: str | None
    augment: str | None
    sets: dict[str, tuple[Any, ...]]


def merge_preset(preset: Preset, *, losses: tuple[str, ...] | None, augments: tuple[str, ...] | None,
                 sets: Mapping[str, tuple[Any, ...]]) -> PresetChoice:
    """The preset's choices under the user's: a plugin option or a setting the user gave (any spelling) wins.

    ``losses`` and ``augments`` are the plugin names the user gave (``None``: not given).
    """
    given = {_bare(k) for k in sets}
    # A preset's loss.* and augment.* settings are parameters of its own loss and augmentation: with another
    # plugin in their place they would name parameters that plugin may not have. Naming the preset's own plugin
    # again replaces nothing.
    replaced = {section for section, names, own in (("loss", losses, preset.loss), ("augment", augments, preset.augment))
                if names is not None and tuple(names) != (own,)}
    merged: dict[str, tuple[Any, ...]] = {k: (v,) for k, v in preset.sets.items()
                                          if _bare(k) not in given and k.partition(".")[0] not in replaced}
    merged.update(sets)
    return PresetChoice(None if losses is not None else preset.loss, None if augments is not None else preset.augment,
                        merged)

__all__ = ["PRESETS", "Preset", "PresetChoice", "get_preset", "merge_preset"]
