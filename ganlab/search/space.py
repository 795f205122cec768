"""A search's space: what is sampled, what is fixed, checked against the plugins before anything is queued.

``--search random|tpe`` turns every distribution in ``--set`` and every comma
list (``--loss hinge,wgan-gp``, ``--set n_critic=1,5``) into a dimension. At
enqueue each plugin combination is resolved once (a *base* config) and every
bound and every listed value is resolved against it, so any point a sampler
draws later is a valid config: the worker only writes the drawn values into a
copy of the base when it claims a trial (see :mod:`ganlab.search.sampler`).
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ganlab.config import ExperimentConfig, Resolver
from ganlab.errors import ConfigError
from ganlab.names import check_name
from ganlab.plugin_files import PluginFile
from ganlab.search.distributions import Distribution
from ganlab.search.objectives import DEFAULT_OBJECTIVE, check_objective
from ganlab.sweep import PLUGIN_AXES, Grid

SAMPLERS = ("grid", "random", "tpe")
SECTIONS_AT = {"arch": 0, "dataset": 1, "loss": 2, "augment": 3}  # a section's plugin in a combination
PRUNERS = ("none", "asha", "median")
# Where a section's values live in a stored config (ExperimentConfig.to_dict).
CONFIG_PATH = {"train": ("train",), "arch": ("architecture", "params"), "dataset": ("dataset", "params"),
                "loss": ("loss", "params"), "augment": ("augment", "params")}


@dataclass(frozen=True)
class SearchSettings:
    """``--search --trials --objective --prune --study`` (or a sweep file's ``[search]``), validated."""

    sampler: str = "grid"
    trials: int | None = None
    objective: str = DEFAULT_OBJECTIVE
    prune: str = "none"
    study: str | None = None

    @property
    def samples(self) -> bool:
        return self.sampler != "grid"

    @property
    def wants_study(self) -> bool:
        """A grid gets a study row only when something needs its cohort (a pruner) or the user named one."""
        return self.samples or self.prune != "none" or self.study is not None

    def check(self) -> SearchSettings:
        """Self, or ConfigError for the first option that is wrong."""
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"--search {self.sampler!r} is not a search; use one of {', '.join(SAMPLERS)}")
        if self.prune not in PRUNERS:
            raise ConfigError(f"--prune {self.prune!r} is not a pruner; use one of {', '.join(PRUNERS)}")
        if self.samples and self.trials is None:
            raise ConfigError(f"--search {self.sampler} needs a budget: give --trials N")
        if not self.samples and self.trials is not None:
            raise ConfigError("--trials is the budget of --search random or tpe; a grid runs every combination "
                              "of its lists")
        if self.trials is not None and self.trials < 1:
            raise ConfigError(f"--trials {self.trials}: a search needs at least 1 trial")
        check_objective(self.objective)
        if self.study is not None:
            check_name(self.study, what="--study")
        return self


@dataclass(frozen=True)
class Dimension:
    """One sampled axis: ``key`` as the user wrote it, ``target`` where its value goes in the config."""

    key: str
    target: str  # "train.lr_g", "arch.base_filters", or a plugin axis ("loss")
    distribution: Distribution | None = None
    choices: tuple[Any, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "target": self.target,
                "distribution": self.distribution.to_dict() if self.distribution else None,
                "choices": list(self.choices) if self.choices is not None else None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Dimension:
        dist = d.get("distribution")
        choices = d.get("choices")
        return cls(str(d["key"]), str(d["target"]), Distribution.from_dict(dist) if dist else None,
                   tuple(choices) if choices is not None else None)

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a point of this axis (a row read back from the queue is checked, not trusted)."""
        if self.distribution is not None:
            return self.distribution.contains(value) and (not self.distribution.is_int or isinstance(value, int))
        return self.choices is not None and value in self.choices


@dataclass(frozen=True)
class SearchSpace:
    """The dimensions and one resolved base config (with its plugin files) per plugin combination."""

    dims: tuple[Dimension, ...]
    plugins: Mapping[str, tuple[str, ...]]  # axis -> its values (one for a fixed plugin)
    bases: Mapping[str, Mapping[str, Any]]  # "arch/dataset/loss/augment" -> {"config": ..., "plugin_files": ...}

    def to_json(self) -> dict[str, Any]:
        return {"dims": [d.to_dict() for d in self.dims], "plugins": {k: list(v) for k, v in self.plugins.items()},
                "bases": {k: dict(v) for k, v in self.bases.items()}}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SearchSpace:
        return cls(tuple(Dimension.from_dict(x) for x in d.get("dims", [])),
                   {k: tuple(v) for k, v in d.get("plugins", {}).items()}, dict(d.get("bases", {})))

    def first_base(self) -> tuple[ExperimentConfig, list[dict[str, Any]]]:
        base = next(iter(self.bases.values()))
        return ExperimentConfig.from_dict(base["config"]), list(base["plugin_files"])

    def corners(self) -> list[ExperimentConfig]:
        """Each base config, and each with every range at its high end (what a build check must see)."""
        out = []
        for combo, base in self.bases.items():
            out.append(ExperimentConfig.from_dict(base["config"]))
            values = dict(zip(PLUGIN_AXES, combo.split("/")))
            point = {d.key: values[d.key] if d.target in PLUGIN_AXES else
                     (int(d.distribution.high) if d.distribution.is_int else d.distribution.high) if d.distribution
                     else (d.choices or (None,))[-1] for d in self.dims}
            out.append(self.config_for(point)[0])
        return out

    def config_for(self, values: Mapping[str, Any]) -> tuple[ExperimentConfig, list[dict[str, Any]]]:
        """The config of one sampled point, and the plugin files it runs; ConfigError for a point off the space."""
        by_target = {}
        for dim in self.dims:
            if dim.key not in values or not dim.contains(values[dim.key]):
                raise ConfigError(f"sampled value {dim.key}={values.get(dim.key)!r} is not in the study's space")
            by_target[dim.target] = values[dim.key]
        combo = "/".join(str(by_target.get(axis, self.plugins[axis][0])) for axis in PLUGIN_AXES)
        if combo not in self.bases:
            raise ConfigError(f"plugin combination {combo} is not in the study's space")
        base = self.bases[combo]
        config = copy.deepcopy(dict(base["config"]))
        for target, value in by_target.items():
            if target in PLUGIN_AXES:
                continue
            section, _, name = target.partition(".")
            node = config
            for part in CONFIG_PATH[section]:
                node = node[part]
            node[name] = value
        return ExperimentConfig.from_dict(config), list(base["plugin_files"])


def build_space(
    resolver: Resolver, grid: Grid, plugin_files: Callable[[str, str, str, str], Sequence[PluginFile]]
) -> SearchSpace:
    """Check every bound and listed value of ``grid`` against every plugin combination; the space to sample.

    Raises ConfigError naming the first value a plugin would refuse.
    """
    if grid.seeds is not None:
        raise ConfigError("--seeds repeats the points of a grid; under --search, sample the seed "
                          "(--set seed=int(0,9)) or fix it (--seed N)")
    plugins = {"arch": grid.archs, "dataset": grid.datasets, "loss": grid.losses, "augment": grid.augments}
    fixed: dict[str, Any] = {}
    sampled: dict[str, tuple[Any, ...]] = {}
    for key, values in grid.sets.items():
        if len(values) == 1 and not isinstance(values[0], Distribution):
            fixed[key] = values[0]
        else:
            sampled[key] = values
    dims: dict[str, Dimension] = {axis: Dimension(axis, axis, choices=values)
                                  for axis, values in plugins.items() if len(values) > 1}
    bases: dict[str, dict[str, Any]] = {}
    for combo in itertools.product(*plugins.values()):
        found: dict[str, Dimension] = {}
        for key, values in sampled.items():  # each range against its declaration first: the clearest message
            section, param = resolver.param_for(combo, key)
            owner = "training settings" if section == "train" else f"{section} {combo[SECTIONS_AT[section]]!r}"
            if isinstance(values[0], Distribution):
                values[0].check(param, owner)
                found[key] = Dimension(key, f"{section}.{param.name}", distribution=values[0])
            else:
                coerced = tuple(dict.fromkeys(param.coerce(v, owner) for v in values))
                found[key] = Dimension(key, f"{section}.{param.name}", choices=coerced)
            seen = dims.setdefault(key, found[key])
            if seen.target != found[key].target:
                raise ConfigError(f"--set {key} means {seen.target} for some plugins and {found[key].target} for "
                                  "others; write the prefixed key")
        first = {key: _low(values) for key, values in sampled.items()}
        base = resolver.resolve(combo[0], combo[1], combo[2], {**fixed, **first}, combo[3])
        for key, values in sampled.items():
            dim = found[key]
            checks = (dim.distribution.high,) if dim.distribution else (dim.choices or ())[1:]
            for value in checks:  # each further value, in the company of every other dimension's first one
                resolver.resolve(combo[0], combo[1], combo[2], {**fixed, **first, key: _typed(value, values)}, combo[3])
        bases["/".join(combo)] = {"config": json.loads(base.to_json()),
                                  "plugin_files": [f.to_dict() for f in plugin_files(*combo)]}
    if not dims:
        raise ConfigError("nothing to search: give a distribution (--set lr_g=log(1e-5,1e-3)) or a comma list")
    return SearchSpace(tuple(dims.values()), plugins, bases)


def _low(values: tuple[Any, ...]) -> Any:
    if isinstance(values[0], Distribution):
        return _typed(values[0].low, values)
    return values[0]


def _typed(value: Any, values: tuple[Any, ...]) -> Any:
    dist = values[0]
    if isinstance(dist, Distribution) and dist.is_int:
        return int(value)
    return value


__all__ = ["CONFIG_PATH", "PRUNERS", "SAMPLERS", "Dimension", "SearchSettings", "SearchSpace", "build_space"]
