"""Resolving an experiment: plugin names plus ``--set`` values -> a full, checked config.

The resolved config is what the queue stores and what the trainer runs. It
holds every hyperparameter with its default filled in, so a run can be
reproduced from the database row alone, and it hashes the same whatever order
the user typed things in.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ganlab.errors import ConfigError, DatasetUnavailable, GanlabError
from ganlab.params import Param, resolve_params, suggest
from ganlab.registry import Registry
from ganlab.specs import DataInfo, LossSpec, TrainingDefaults

BACKENDS = ("tensorflow", "jax")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
SECTIONS = ("train", "arch", "dataset", "loss")


def train_params(loss: LossSpec | None = None) -> tuple[Param, ...]:
    """Settings of the training loop; optimiser defaults come from the loss's recommendation."""
    return _train_params(loss.defaults if loss is not None else TrainingDefaults())


@functools.lru_cache(maxsize=256)
def _train_params(d: TrainingDefaults) -> tuple[Param, ...]:
    # Cached per defaults: a sweep resolves thousands of configs, and building a Param checks its default.
    return (
        Param("steps", int, 1000, "generator updates to train for", low=1),
        Param("batch_size", int, 64, "images per batch", low=1, high=65536),
        Param("seed", int, 0, "seed for weights, noise and data order", low=0, high=2**31 - 1),
        Param("backend", str, "tensorflow", "Keras backend", choices=BACKENDS),
        Param("precision", str, "float32", "Keras dtype policy", choices=PRECISIONS),
        Param("latent_dim", int, 100, "length of the noise vector z", low=1, high=4096),
        Param("n_critic", int, d.n_critic, "discriminator updates per generator update", low=1, high=100),
        Param("lr_g", float, d.lr_g, "generator Adam learning rate", low=1e-9, high=1.0),
        Param("lr_d", float, d.lr_d, "discriminator Adam learning rate", low=1e-9, high=1.0),
        Param("beta_1", float, d.beta_1, "Adam beta_1 for both networks", low=0.0, high=0.999999),
        Param("beta_2", float, d.beta_2, "Adam beta_2 for both networks", low=0.0, high=0.999999),
        Param("ema", float, 0.0, "EMA decay of generator weights (0: off)", low=0.0, high=0.99999),
        Param("jit_compile", bool, False, "compile the step with XLA (TensorFlow backend)"),
        Param("checkpoint_every", int, 500, "steps between checkpoints", low=1),
        Param("eval_every", int, 500, "steps between metric evaluations (also at the end)", low=1),
        Param("eval_samples", int, 1000, "generated samples per evaluation", low=10, high=100000),
        Param("sample_every", int, 250, "steps between sample image grids", low=1),
        Param("log_every", int, 10, "steps between scalar logs", low=1),
    )


@dataclass(frozen=True)
class ExperimentConfig:
    """A fully resolved experiment: every value explicit."""

    architecture: str
    dataset: str
    loss: str
    arch_params: dict[str, Any] = field(default_factory=dict)
    dataset_params: dict[str, Any] = field(default_factory=dict)
    loss_params: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "architecture": {"name": self.architecture, "params": dict(self.arch_params)},
            "dataset": {"name": self.dataset, "params": dict(self.dataset_params)},
            "loss": {"name": self.loss, "params": dict(self.loss_params)},
            "train": dict(self.train),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExperimentConfig:
        return cls(
            architecture=d["architecture"]["name"],
            dataset=d["dataset"]["name"],
            loss=d["loss"]["name"],
            arch_params=dict(d["architecture"]["params"]),
            dataset_params=dict(d["dataset"]["params"]),
            loss_params=dict(d["loss"]["params"]),
            train=dict(d["train"]),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def hash(self) -> str:
        """Stable id of the config: equal configs hash equal, whatever the input order."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def flat(self) -> dict[str, Any]:
        """``section.key -> value`` plus the three plugin names (for HParams and comparisons)."""
        out: dict[str, Any] = {"arch": self.architecture, "dataset": self.dataset, "loss": self.loss}
        for prefix, params in (("arch", self.arch_params), ("dataset", self.dataset_params),
                               ("loss", self.loss_params), ("train", self.train)):
            out.update({f"{prefix}.{k}": v for k, v in params.items()})
        return out


def split_sets(sets: Mapping[str, Any], declared: Mapping[str, tuple[Param, ...]]) -> dict[str, dict[str, Any]]:
    """Route each ``key=value`` to its section; bare keys must name exactly one section's parameter."""
    routed: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for key, value in sets.items():
        if "." in key:
            section, _, name = key.partition(".")
            if section not in SECTIONS:
                raise ConfigError(f"--set {key}: unknown section {section!r}; use one of {', '.join(SECTIONS)} (or no prefix)")
            routed[section][name] = value
            continue
        owners = [s for s in SECTIONS if any(p.name == key for p in declared[s])]
        if len(owners) > 1:
            raise ConfigError(
                f"--set {key} is ambiguous: {' and '.join(owners)} both declare it; write "
                + " or ".join(f"{s}.{key}" for s in owners)
            )
        if not owners:
            every = {p.name for ps in declared.values() for p in ps}
            raise ConfigError(
                f"--set {key}: no such hyperparameter for these plugins{suggest(key, every)} "
                "(see 'ganlab plugins show NAME')"
            )
        routed[owners[0]][key] = value
    return routed


class Resolver:
    """Resolves experiments against one registry, caching dataset probes (sweeps repeat them)."""

    def __init__(self, registry: Registry, *, check_data: bool = True) -> None:
        self.registry = registry
        self.check_data = check_data
        self._data: dict[tuple[str, tuple[tuple[str, Any], ...]], DataInfo | GanlabError] = {}

    def resolve(self, architecture: str, dataset: str, loss: str, sets: Mapping[str, Any] | None = None) -> ExperimentConfig:
        arch_spec = self.registry.architecture(architecture)
        data_spec = self.registry.dataset(dataset)
        loss_spec = self.registry.loss(loss)
        declared = {
            "train": train_params(loss_spec),
            "arch": arch_spec.params,
            "dataset": data_spec.params,
            "loss": loss_spec.params,
        }
        routed = split_sets(sets or {}, declared)
        train = resolve_params(declared["train"], routed["train"], "training settings")
        config = ExperimentConfig(
            architecture=architecture,
            dataset=dataset,
            loss=loss,
            arch_params=resolve_params(arch_spec.params, routed["arch"], f"architecture {architecture!r}"),
            dataset_params=resolve_params(data_spec.params, routed["dataset"], f"dataset {dataset!r}"),
            loss_params=resolve_params(loss_spec.params, routed["loss"], f"loss {loss!r}"),
            train=train,
        )
        if self.check_data:
            info = self.data_info(dataset, config.dataset_params)
            if arch_spec.conditional and info.num_classes is None:
                raise ConfigError(
                    f"architecture {architecture!r} is class-conditional but dataset {dataset!r} has no labels; "
                    "pick an unconditional architecture or a labelled dataset"
                )
            if arch_spec.check_shape is not None:
                why = arch_spec.check_shape(info.image_shape)
                if why:
                    raise ConfigError(f"architecture {architecture!r} cannot handle {dataset!r} images: {why}")
        return config

    def data_info(self, dataset: str, params: Mapping[str, Any]) -> DataInfo:
        """Shape facts of a dataset, or the one-line reason it cannot be loaded here."""
        # Resolved values are plain scalars: a tuple key avoids serialising every config of a sweep.
        key = (dataset, tuple(sorted(params.items())))
        if key not in self._data:
            spec = self.registry.dataset(dataset)
            try:
                self._data[key] = spec.describe(params) if spec.describe else spec.load(params).info()
            except GanlabError as exc:
                self._data[key] = exc
            except (OSError, ValueError, TypeError) as exc:
                self._data[key] = DatasetUnavailable(f"dataset {dataset!r} cannot be loaded: {type(exc).__name__}: {exc}")
        found = self._data[key]
        if isinstance(found, GanlabError):
            raise found
        return found
