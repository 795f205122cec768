"""The experiment options shared by ``ganlab queue add`` and ``ganlab train``.

``@experiment_options`` adds ``--arch --dataset --loss --augment --preset --steps
--batch-size --seed --set --backend --precision`` to a command and hands it one
:class:`ExperimentOptions` argument named ``experiment``.
:func:`experiment_configs` turns that into validated ExperimentConfigs, so
both commands accept the same options and refuse the same mistakes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from ganlab.config import BACKENDS, DEFAULT_AUGMENT, PRECISIONS, ExperimentConfig, Resolver
from ganlab.errors import ConfigError
from ganlab.presets import PRESETS, get_preset, merge_preset
from ganlab.registry import Registry
from ganlab.sweep import DEFAULT_ARCH, DEFAULT_DATASET, DEFAULT_LOSS, Grid, expand, parse_sets, split_list

F = TypeVar("F", bound=Callable[..., Any])

# Options that are shorthands for the training setting of the same name.
_SHORTHANDS = ("steps", "batch_size", "seed", "backend", "precision")


@dataclass(frozen=True)
class ExperimentOptions:
    """The parsed shared options, before validation. ``None``: not given on the command line."""

    arch: str | None = None
    dataset: str | None = None
    loss: str | None = None
    steps: int | None = None
    batch_size: int | None = None
    seed: int | None = None
    sets: tuple[str, ...] = ()
    backend: str | None = None
    precision: str | None = None
    augment: str | None = None
    preset: str | None = None

    def plugin_options_given(self) -> list[str]:
        return [f"--{k}" for k in ("arch", "dataset", "loss", "augment", "preset") if getattr(self, k) is not None]

    def settings(self, *, lists: bool) -> dict[str, tuple[Any, ...]]:
        """``--set`` values plus the shorthand options, as ``key -> values``; refuses a setting given twice."""
        sets = parse_sets(self.sets, lists=lists)
        for key in _SHORTHANDS:
            value = getattr(self, key)
            if value is None:
                continue
            clash = next((k for k in sets if k in (key, f"train.{key}")), None)
            if clash is not None:
                flag = "--" + key.replace("_", "-")
                raise ConfigError(
                    f"{key} is given twice, by {flag} {value} and by --set {clash}={','.join(map(str, sets[clash]))}; keep one"
                )
            sets[f"train.{key}"] = (value,)
        return sets

    def grid(self, *, lists: bool = True, **meta: Any) -> Grid:
        """One sweep block: comma lists in ``--arch/--dataset/--loss/--set`` become axes (if ``lists``)."""

        def names(option: str, value: str | None, default: str) -> tuple[str, ...]:
            if value is None:
                return (default,)
            return split_list(option, value) if lists else (value,)

        losses = names("--loss", self.loss, DEFAULT_LOSS)
        augments = names("--augment", self.augment, DEFAULT_AUGMENT)
        sets = self.settings(lists=lists)
        if self.preset is not None:
            choice = merge_preset(get_preset(self.preset), losses=losses if self.loss is not None else None,
                                  augments=augments if self.augment is not None else None, sets=sets)
            losses = (choice.loss,) if choice.loss else losses
            augments = (choice.augment,) if choice.augment else augments
            sets = choice.sets
        return Grid(
            archs=names("--arch", self.arch, DEFAULT_ARCH),
            datasets=names("--dataset", self.dataset, DEFAULT_DATASET),
            losses=losses,
            augments=augments,
            sets=sets,
            **meta,
        )


def experiment_options(func: F) -> F:
    """Click decorator: the shared experiment options, delivered as ``experiment=ExperimentOptions(...)``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs["experiment"] = ExperimentOptions(
            arch=kwargs.pop("arch"),
            dataset=kwargs.pop("dataset"),
            loss=kwargs.pop("loss"),
            steps=kwargs.pop("steps"),
            batch_size=kwargs.pop("batch_size"),
            seed=kwargs.pop("seed"),
            sets=tuple(kwargs.pop("sets")),
            backend=kwargs.pop("backend"),
            precision=kwargs.pop("precision"),
            augment=kwargs.pop("augment"),
            preset=kwargs.pop("preset"),
        )
        return func(*args, **kwargs)

    # click applies decorators bottom-up; listing them in reverse keeps --help in this order.
    options = [
        click.option("--arch", metavar="NAME[,NAME]", help=f"Architecture plugin (default {DEFAULT_ARCH}).", default=None),
        click.option("--dataset", metavar="NAME[,NAME]", help=f"Dataset plugin (default {DEFAULT_DATASET}).", default=None),
        click.option("--loss", metavar="NAME[,NAME]", help=f"Loss plugin (default {DEFAULT_LOSS}).", default=None),
        click.option("--augment", metavar="NAME[,NAME]", default=None,
                     help=f"Augmentation applied to what D sees (default {DEFAULT_AUGMENT}); settings: --set augment.KEY=V."),
        click.option("--preset", metavar="NAME", default=None,
                     help=f"A measured recipe ({', '.join(sorted(PRESETS))}) expanded into --loss/--augment/--set values; "
                          "options given here win."),
        click.option("--steps", type=int, default=None, help="Generator updates to train for (default 1000)."),
        click.option("--batch-size", "batch_size", type=int, default=None, help="Images per batch (default 64)."),
        click.option("--seed", type=int, default=None, help="Seed for weights, noise and data order (default 0)."),
        click.option(
            "--set", "sets", multiple=True, metavar="KEY=VALUE",
            help="A hyperparameter of the chosen plugins or a training setting (lr_g, n_critic, ...); "
                 "prefix arch./dataset./loss./train. when ambiguous. Repeatable.",
        ),
        click.option("--backend", type=click.Choice(BACKENDS), default=None, help="Keras backend (default tensorflow)."),
        click.option("--precision", type=click.Choice(PRECISIONS), default=None, help="Keras dtype policy (default float32)."),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


def experiment_configs(registry: Registry, options: ExperimentOptions, *, sweep: bool = False) -> list[ExperimentConfig]:
    """Validate the options into configs: exactly one unless ``sweep`` (then one per combination).

    Without ``sweep``, a comma list is refused with a pointer to ``ganlab queue add``.
    """
    if not sweep:
        for option, value in (("--arch", options.arch), ("--dataset", options.dataset), ("--loss", options.loss),
                              ("--augment", options.augment)):
            if value is not None and "," in value:
                raise ConfigError(f"{option} {value} lists several values; this runs one experiment: queue a sweep with 'ganlab queue add'")
        for key, values in options.settings(lists=True).items():
            if len(values) > 1:
                raise ConfigError(
                    f"--set {key}={','.join(map(str, values))} lists several values; this runs one experiment: "
                    "queue a sweep with 'ganlab queue add'"
                )
    resolver = Resolver(registry)
    return [plan.config for plan in expand(resolver, [options.grid(lists=sweep)])]


def single_config(registry: Registry, options: ExperimentOptions) -> ExperimentConfig:
    """The one experiment the options describe (for ``ganlab train``)."""
    return experiment_configs(registry, options, sweep=False)[0]


__all__ = ["ExperimentOptions", "experiment_configs", "experiment_options", "single_config"]


