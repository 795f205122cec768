"""Which metric names a search may optimise, and in which direction.

The names are the outputs of the metric plugins the trials compute
(``train.metrics``), so a metric plugin's score can be an objective too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ganlab.config import ExperimentConfig
from ganlab.errors import ConfigError
from ganlab.params import suggest
from ganlab.registry import Registry

DEFAULT_OBJECTIVE = "fd"


def check_objective(
    name: str, config: ExperimentConfig | Mapping[str, Any] | None = None, registry: Registry | None = None
) -> str:
    """The direction (``minimize`` or ``maximize``) of ``name`` among the scores ``config`` reports.

    Without ``config`` only the name's form is checked (the options are read before any config is resolved).
    """
    if not name or len(name) > 100 or not name.replace("_", "").isalnum() or not name.islower():
        raise ConfigError(f"--objective {name[:100]!r}: not a metric name; use a score name like fd or kid")
    if config is None:
        return "minimize"
    from ganlab.metrics.selection import metric_specs

    if registry is None:
        from ganlab.registry import load_plugins

        registry = load_plugins()
    directions = {out: "minimize" if spec.lower_is_better else "maximize"
                  for spec in metric_specs(registry, config) for out in spec.outputs}
    if name not in directions:
        names = sorted(directions)
        raise ConfigError(f"--objective {name!r}: no metric of that name is reported at evaluations"
                          f"{suggest(name, names)}; use one of {', '.join(names)} (train.metrics chooses them)")
    return directions[name]


__all__ = ["DEFAULT_OBJECTIVE", "check_objective"]
