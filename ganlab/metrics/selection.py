"""Which metrics an experiment computes (``train.metrics``) and which score names it reports.

:func:`reported_names` is the one answer other code asks (``--objective``
validation, comparisons): the outputs of every metric the config names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ganlab.errors import ConfigError, GanlabError
from ganlab.params import suggest

if TYPE_CHECKING:
    from ganlab.config import ExperimentConfig
    from ganlab.registry import Registry
    from ganlab.specs import MetricSpec

__all__ = ["DEFAULT_METRICS", "MAX_METRICS", "check_metrics", "metric_names", "metric_specs", "reported_names"]

#: What an experiment computes unless ``train.metrics`` says otherwise (what every run computed before).
DEFAULT_METRICS = "fd,kid"
#: At most this many metrics per experiment (each may bring a plugin file the worker pins).
MAX_METRICS = 16


def metric_names(value: Any) -> tuple[str, ...]:
    """``"fd, kid,pr"`` -> ``("fd", "kid", "pr")``: stripped, first occurrence kept; ConfigError for an empty item."""
    if not isinstance(value, str):
        raise ConfigError(f"train.metrics={value!r} must be metric names separated by ',' (e.g. fd,kid,pr)")
    items = [n.strip() for n in value.split(",")]
    if not value.strip():
        raise ConfigError("train.metrics is empty; name at least one metric (e.g. fd), see 'ganlab plugins --kind metric'")
    if not all(items):
        raise ConfigError(f"train.metrics={value[:200]!r} has an empty item; separate metric names with single commas, "
                          "e.g. fd,kid,pr")
    names = tuple(dict.fromkeys(items))
    if len(names) > MAX_METRICS:
        raise ConfigError(f"train.metrics names {len(names)} metrics; at most {MAX_METRICS} per experiment")
    return names


def _train(config: ExperimentConfig | Mapping[str, Any]) -> Mapping[str, Any]:
    return config.get("train", {}) if isinstance(config, Mapping) else config.train


def metric_specs(registry: Registry, config: ExperimentConfig | Mapping[str, Any]) -> list[MetricSpec]:
    """The specs of the metrics ``config`` computes; ConfigError naming an unknown one."""
    specs = []
    for name in metric_names(_train(config).get("metrics", DEFAULT_METRICS)):
        try:
            specs.append(registry.metric(name))
        except GanlabError as exc:
            known = [e.name for e in registry.entries("metric")]
            if registry.problem_for(name) is not None:
                raise ConfigError(f"train.metrics: {exc}") from None
            raise ConfigError(f"train.metrics: unknown metric {name[:100]!r}{suggest(name, known)} "
                              f"(available: {', '.join(known) or 'none'})") from None
    return specs


def reported_names(config: ExperimentConfig | Mapping[str, Any], registry: Registry | None = None) -> list[str]:
    """The score names an experiment reports, e.g. ``["fd", "kid", "precision", "recall"]``.

    ``config`` is an :class:`~ganlab.config.ExperimentConfig` or its dict;
    ``registry`` defaults to the plugins of the current folder. Floors
    (``<name>_floor``), spreads (``<name>_std``) and bests (``best_<name>``)
    accompany each name in stored results.
    """
    if registry is None:
        from ganlab.registry import load_plugins

        registry = load_plugins()
    return [out for spec in metric_specs(registry, config) for out in spec.outputs]


def check_metrics(registry: Registry, train: Mapping[str, Any], n_examples: int | None) -> str:
    """Validate ``train.metrics`` against the plugins and the sample counts; returns the canonical value.

    Every metric needs ``min_samples`` generated images (``eval_samples``) and
    as many real ones in the reference sample and in the holdout split of the
    floor (both drawn from a data set of ``n_examples`` images, when known).
    """
    names = metric_names(train.get("metrics", DEFAULT_METRICS))
    specs = metric_specs(registry, {"train": {"metrics": ",".join(names)}})
    backbones: dict[str, MetricSpec] = {}
    for spec in specs:
        # Metrics naming one extractor share its features: two different backbones under one name cannot.
        first = backbones.setdefault(spec.features.name, spec)
        if first.features != spec.features:
            raise ConfigError(f"train.metrics: metrics {first.name!r} and {spec.name!r} use two different feature "
                              f"extractors both named {spec.features.name!r}; rename one of them")
    outputs: dict[str, str] = {}
    for spec in specs:
        for out in spec.outputs:
            if out in outputs:
                raise ConfigError(f"train.metrics: metrics {outputs[out]!r} and {spec.name!r} both report {out!r}; keep one")
            outputs[out] = spec.name
    eval_samples = int(train.get("eval_samples", 0))
    for spec in specs:
        if eval_samples < spec.min_samples:
            raise ConfigError(f"metric {spec.name!r} needs at least {spec.min_samples} samples but eval_samples="
                              f"{eval_samples}; raise it with --set eval_samples={spec.min_samples}")
        # The default pair is refused nothing on a small data set: runs on a handful of images (toys,
        # tests, a first look at a new data set) trained with it before metrics were a choice, and its
        # floor shows how little such numbers mean. A metric the user names must have its samples.
        if n_examples is not None and ",".join(names) != DEFAULT_METRICS:
            from ganlab.metrics.suite import holdout_size

            n_real = min(eval_samples, n_examples)
            smallest = min(n_real, holdout_size(n_examples, n_real))
            if smallest < spec.min_samples:
                raise ConfigError(f"metric {spec.name!r} needs at least {spec.min_samples} real images in the reference "
                                  f"sample and the holdout split, but this data set of {n_examples} images gives "
                                  f"{smallest}; use a larger data set or drop {spec.name!r} from train.metrics")
    return ",".join(names)
