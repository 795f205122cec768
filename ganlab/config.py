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
from ganlab.limits import MAX_BATCH_SIZE, MAX_SEED, MAX_STEPS
from ganlab.metrics.selection import DEFAULT_METRICS, check_metrics
from ganlab.params import Param, resolve_params, suggest
from ganlab.registry import Registry
from ganlab.specs import DataInfo, LossSpec, TrainingDefaults

BACKENDS = ("tensorflow", "jax")
# Resolved sections kept for reuse. A sweep's shared sections (plugins, fixed settings)
# hit it; a section holding a varying value (lr, seed) is new every time, and without a
# bound a 100,000-point sweep kept 100,000 dicts alive for nothing (50 MB).
_SECTION_CACHE_SIZE = 4096
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
SECTIONS = ("train", "arch", "dataset", "loss", "augment")
DEFAULT_AUGMENT = "none"
#: The metrics every evaluation computes (lower is better); ganlab.training.evaluation scores them.
METRICS = ("fd", "kid")


def train_params(loss: LossSpec | None = None) -> tuple[Param, ...]:
    """Settings of the training loop; optimiser defaults come from the loss's recommendation."""
    return _train_params(loss.defaults if loss is not None else TrainingDefaults())


@functools.lru_cache(maxsize=256)
def _train_params(d: TrainingDefaults) -> tuple[Param, ...]:
    # Cached per defaults: a sweep resolves thousands of configs, and building a Param checks its default.
    return (
        Param("steps", int, 1000, "generator updates to train for", low=1, high=MAX_STEPS),
        Param("batch_size", int, 64, "images per batch", low=1, high=MAX_BATCH_SIZE),
        Param("seed", int, 0, "seed for weights, noise and data order", low=0, high=MAX_SEED),
        Param("backend", str, "tensorflow", "Keras backend", choices=BACKENDS),
        Param("precision", str, "float32", "Keras dtype policy", choices=PRECISIONS),
        Param("latent_dim", int, 100, "length of the noise vector z", low=1, high=4096),
        Param("n_critic", int, d.n_critic, "discriminator updates per generator update", low=1, high=100),
        Param("lr_g", float, d.lr_g, "generator Adam learning rate", low=1e-9, high=1.0),
        Param("lr_d", float, d.lr_d, "discriminator Adam learning rate", low=1e-9, high=1.0),
        Param("beta_1", float, d.beta_1, "Adam beta_1 for both networks", low=0.0, high=0.999999),
        Param("beta_2", float, d.beta_2, "Adam beta_2 for both networks", low=0.0, high=0.999999),
        # On by default: at issue #20's budget (digits 32x32, 2,500 steps) the EMA generator's best FD was
        # 1.90 against the raw generator's 2.26 (same seed), at 0.995x the steps/s (docs/performance.md).
        Param("ema", float, 0.999, "EMA decay of generator weights, evaluated and sampled (0: off)",
              low=0.0, high=0.99999),
        Param("jit_compile", bool, False, "compile the step with XLA (TensorFlow backend)"),
        Param("checkpoint_every", int, 500, "steps between checkpoints", low=1, high=MAX_STEPS),
        Param("eval_every", int, 500, "steps between metric evaluations (also at the end)", low=1, high=MAX_STEPS),
        Param("eval_samples", int, 1000, "generated samples per evaluation", low=10, high=100000),
        Param("metrics", str, DEFAULT_METRICS, "metrics computed at each evaluation, e.g. fd,kid,pr,dc "
              "(see 'ganlab plugins --kind metric')"),
        Param("sample_every", int, 250, "steps between sample image grids", low=1, high=MAX_STEPS),
        Param("log_every", int, 10, "steps between scalar logs", low=1, high=MAX_STEPS),
        # GAN-aware stops (see ganlab.training.stops); 0 turns each off.
        Param("patience", int, 0, "stop after this many evaluations without a better patience_metric (0: off)",
              low=0, high=MAX_STEPS),
        Param("patience_metric", str, "fd", "the metric train.patience watches (lower is better)", choices=METRICS),
        Param("stop_d_wins_steps", int, 0,
              "stop after this many steps in a row with disc/accuracy at 1 (0: off)",
              low=0, high=MAX_STEPS),
        Param("stop_collapse_fraction", float, 0.0,
              "stop when an evaluation's diversity falls under this fraction of the real data's (0: off)",
              low=0.0, high=1.0),
    )


#: Training settings stored only when on: configs (and hashes) from before the stops existed stay the same,
#: so a queued row or a run dir's config.json from then still checks and resumes.
OFF_BY_DEFAULT: dict[str, Any] = {"patience": 0, "patience_metric": "fd", "stop_d_wins_steps": 0,
                                  "stop_collapse_fraction": 0.0}


def without_off_settings(train: Mapping[str, Any]) -> dict[str, Any]:
    """``train`` less the :data:`OFF_BY_DEFAULT` settings left at their defaults."""
    return {k: v for k, v in train.items() if k not in OFF_BY_DEFAULT or v != OFF_BY_DEFAULT[k]}


def train_setting(train: Mapping[str, Any], name: str) -> Any:
    """A training setting of a resolved config, with the default of one stored only when on."""
    return train[name] if name in train else OFF_BY_DEFAULT[name]


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
    augmentation: str = DEFAULT_AUGMENT
    augment_params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The default metrics are implied when absent (stored configs leave them out, see to_dict):
        # spelled out here, so a config equals itself read back from the queue.
        if "metrics" not in self.train:
            object.__setattr__(self, "train", {**self.train, "metrics": DEFAULT_METRICS})

    def to_dict(self) -> dict[str, Any]:
        out = {
            "architecture": {"name": self.architecture, "params": dict(self.arch_params)},
            "dataset": {"name": self.dataset, "params": dict(self.dataset_params)},
            "loss": {"name": self.loss, "params": dict(self.loss_params)},
            "train": dict(self.train),
        }
        # Absent when the default: configs (and hashes) from before train.metrics existed stay the same.
        if out["train"].get("metrics") == DEFAULT_METRICS:
            del out["train"]["metrics"]
        # Absent when off: configs (and hashes) from before augmentations existed stay the same.
        if self.augmentation != DEFAULT_AUGMENT:
            out["augment"] = {"name": self.augmentation, "params": dict(self.augment_params)}
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExperimentConfig:
        return cls(
            architecture=d["architecture"]["name"],
            dataset=d["dataset"]["name"],
            loss=d["loss"]["name"],
            arch_params=dict(d["architecture"]["params"]),
            dataset_params=dict(d["dataset"]["params"]),
            loss_params=dict(d["loss"]["params"]),
            # A stored config leaves the default metrics out (see to_dict): put them back.
            train={**dict(d["train"]), "metrics": d["train"].get("metrics", DEFAULT_METRICS)},
            augmentation=d.get("augment", {}).get("name", DEFAULT_AUGMENT),
            augment_params=dict(d.get("augment", {}).get("params", {})),
        )

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): what the queue stores and what the hash covers."""
        return self._json

    @functools.cached_property
    def _json(self) -> str:
        # Serialised once per config: enqueueing a sweep needs it twice per row (hash and stored column).
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def hash(self) -> str:
        """Stable id of the config: equal configs hash equal, whatever the input order."""
        return hashlib.sha256(self._json.encode()).hexdigest()[:16]

    def extends(self, earlier: ExperimentConfig) -> bool:
        """Whether this config is ``earlier`` with a larger step budget (``ganlab queue extend``), else the same."""
        if int(self.train["steps"]) < int(earlier.train["steps"]):
            return False
        mine, theirs = self.to_dict(), earlier.to_dict()
        mine["train"].pop("steps")
        theirs["train"].pop("steps")
        return mine == theirs

    def flat(self) -> dict[str, Any]:
        """``section.key -> value`` plus the plugin names (for HParams and comparisons)."""
        out: dict[str, Any] = {"arch": self.architecture, "dataset": self.dataset, "loss": self.loss,
                               "augment": self.augmentation}
        for prefix, params in (("arch", self.arch_params), ("dataset", self.dataset_params),
                               ("loss", self.loss_params), ("augment", self.augment_params), ("train", self.train)):
            out.update({f"{prefix}.{k}": v for k, v in params.items()})
        return out


def _owners_index(declared: Mapping[str, tuple[Param, ...]]) -> dict[str, list[str]]:
    """``parameter name -> the sections declaring it``, in section order."""
    index: dict[str, list[str]] = {}
    for section in SECTIONS:
        for p in declared[section]:
            index.setdefault(p.name, []).append(section)
    return index


def _route(sets: Mapping[str, Any], owners_of: Mapping[str, list[str]]) -> dict[str, dict[str, Any]]:
    """Route each ``key=value`` to its section; bare keys must name exactly one section's parameter."""
    routed: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for key, value in sets.items():
        if "." in key:
            section, _, name = key.partition(".")
            if section not in SECTIONS:
                raise ConfigError(f"--set {key}: unknown section {section!r}; use one of {', '.join(SECTIONS)} (or no prefix)")
            routed[section][name] = value
            continue
        owners = owners_of.get(key, [])
        if len(owners) > 1:
            raise ConfigError(
                f"--set {key} is ambiguous: {' and '.join(owners)} both declare it; write "
                + " or ".join(f"{s}.{key}" for s in owners)
            )
        if not owners:
            raise ConfigError(
                f"--set {key}: no such hyperparameter for these plugins{suggest(key, owners_of)} "
                "(see 'ganlab plugins show NAME' for a plugin's, 'ganlab settings' for training's)"
            )
        routed[owners[0]][key] = value
    return routed


class Resolver:
    """Resolves experiments against one registry.

    A sweep resolves thousands of points that share plugins and most values, so
    the resolver caches per plugin triple (declared parameters, who owns each
    bare key), per section (the resolved values of an identical ``--set``
    subset), per dataset (the probe) and per architecture and image shape
    (``check_shape``). Coercion of path values depends on the
    working directory: use one resolver per command.
    """

    def __init__(self, registry: Registry, *, check_data: bool = True) -> None:
        self.registry = registry
        self.check_data = check_data
        self._data: dict[tuple[str, tuple[tuple[str, Any], ...]], DataInfo | GanlabError] = {}
        self._declared: dict[tuple[str, ...], tuple[dict[str, tuple[Param, ...]], dict[str, list[str]]]] = {}
        self._sections: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._shape_checks: dict[tuple[str, tuple[int, int, int]], str | None] = {}
        self._metric_checks: dict[tuple[str, int, int | None], str | ConfigError] = {}

    def _declared_for(
        self, architecture: str, dataset: str, loss: str, augmentation: str = DEFAULT_AUGMENT
    ) -> tuple[dict[str, tuple[Param, ...]], dict[str, list[str]]]:
        key = (architecture, dataset, loss, augmentation)
        if key not in self._declared:
            declared = {
                "train": train_params(self.registry.loss(loss)),
                "arch": self.registry.architecture(architecture).params,
                "dataset": self.registry.dataset(dataset).params,
                "loss": self.registry.loss(loss).params,
                "augment": self.registry.augmentation(augmentation).params,
            }
            self._declared[key] = (declared, _owners_index(declared))
        return self._declared[key]

    def _section(self, plugins: tuple[str, ...], section: str, declared: tuple[Param, ...],
                 given: dict[str, Any], owner: str) -> dict[str, Any]:
        try:
            # The type is part of the key: 1, 1.0 and True are equal in Python but coerce differently.
            key = (plugins, section, tuple(sorted((k, type(v), v) for k, v in given.items())))
            hash(key)
        except TypeError:  # an unhashable value (a list from a sweep file): resolve_params will name it
            return resolve_params(declared, given, owner)
        if key not in self._sections:
            if len(self._sections) >= _SECTION_CACHE_SIZE:
                self._sections.clear()
            self._sections[key] = resolve_params(declared, given, owner)
        return dict(self._sections[key])

    def param_for(self, plugins: tuple[str, str, str, str], key: str) -> tuple[str, Param]:
        """The section and declared parameter a ``--set`` key names for (arch, dataset, loss, augmentation).

        ConfigError, as :meth:`resolve` words it, for a key no plugin declares.
        """
        declared, owners_of = self._declared_for(*plugins)
        routed = _route({key: None}, owners_of)
        section, name = next((s, n) for s, given in routed.items() for n in given)
        for p in declared[section]:
            if p.name == name:
                return section, p
        known = ", ".join(sorted(p.name for p in declared[section])) or "none"
        raise ConfigError(f"--set {key}: {section} has no hyperparameter {name!r}"
                          f"{suggest(name, [p.name for p in declared[section]])} (it accepts: {known})")

    def resolve(
        self, architecture: str, dataset: str, loss: str, sets: Mapping[str, Any] | None = None,
        augmentation: str = DEFAULT_AUGMENT,
    ) -> ExperimentConfig:
        declared, owners_of = self._declared_for(architecture, dataset, loss, augmentation)
        arch_spec = self.registry.architecture(architecture)
        plugins = (architecture, dataset, loss, augmentation)
        routed = _route(sets or {}, owners_of)
        augment_params = self._section(plugins, "augment", declared["augment"], routed["augment"],
                                       f"augmentation {augmentation!r}")
        check = self.registry.augmentation(augmentation).check
        why = check(augment_params) if check is not None else None
        if why:
            raise ConfigError(f"augmentation {augmentation!r}: {why}")
        config = ExperimentConfig(
            architecture=architecture,
            dataset=dataset,
            loss=loss,
            arch_params=self._section(plugins, "arch", declared["arch"], routed["arch"], f"architecture {architecture!r}"),
            dataset_params=self._section(plugins, "dataset", declared["dataset"], routed["dataset"], f"dataset {dataset!r}"),
            loss_params=self._section(plugins, "loss", declared["loss"], routed["loss"], f"loss {loss!r}"),
            train=without_off_settings(
                self._section(plugins, "train", declared["train"], routed["train"], "training settings")),
            augmentation=augmentation,
            augment_params=augment_params,
        )
        info = self.data_info(dataset, config.dataset_params) if self.check_data else None
        config.train["metrics"] = self._metrics(config.train, info.num_examples if info else None)
        if info is not None:
            if arch_spec.conditional and info.num_classes is None:
                raise ConfigError(
                    f"architecture {architecture!r} is class-conditional but dataset {dataset!r} has no labels; "
                    "pick an unconditional architecture or a labelled dataset"
                )
            if arch_spec.check_shape is not None:
                shape_key = (architecture, info.image_shape)
                if shape_key not in self._shape_checks:
                    self._shape_checks[shape_key] = arch_spec.check_shape(info.image_shape)
                why = self._shape_checks[shape_key]
                if why:
                    raise ConfigError(f"architecture {architecture!r} cannot handle {dataset!r} images: {why}")
        return config

    def _metrics(self, train: Mapping[str, Any], n_examples: int | None) -> str:
        """``train.metrics`` checked (see :func:`check_metrics`), once per distinct value, sample count and data size."""
        key = (str(train.get("metrics", DEFAULT_METRICS)), int(train.get("eval_samples", 0)), n_examples)
        if key not in self._metric_checks:
            try:
                self._metric_checks[key] = check_metrics(self.registry, train, n_examples)
            except ConfigError as exc:
                self._metric_checks[key] = exc
        found = self._metric_checks[key]
        if isinstance(found, ConfigError):
            raise found
        return found

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


def checked_config(registry: Registry, raw: Any, where: str) -> ExperimentConfig:
    """A resolved config as stored (a config file, a queue row), checked against the installed plugins.

    The same rules as the queue's: resolving it again must give it back
    unchanged. ConfigError naming ``where`` otherwise.
    """
    try:
        config = ExperimentConfig.from_dict(raw)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{where} is not a ganlab config ({type(exc).__name__}: {exc})") from None
    sets: dict[str, Any] = {}
    for section, params in (("arch", config.arch_params), ("dataset", config.dataset_params),
                            ("loss", config.loss_params), ("augment", config.augment_params), ("train", config.train)):
        sets.update({f"{section}.{k}": v for k, v in params.items() if v is not None})
    checked = Resolver(registry).resolve(config.architecture, config.dataset, config.loss, sets, config.augmentation)
    if checked.to_json() != config.to_json():
        raise ConfigError(f"{where} is incomplete or out of date for the installed plugins; re-create it with 'ganlab queue add'")
    return checked
