"""Which metric names a search may optimise, and in which direction.

Kept to one function on purpose: when metric plugins arrive, their reported
names are listed there and nothing else in the search changes.
"""

from __future__ import annotations

from ganlab.errors import ConfigError
from ganlab.params import suggest
from ganlab.training.evaluation import METRICS

DEFAULT_OBJECTIVE = "fd"


def check_objective(name: str) -> str:
    """The direction (``minimize``) of a metric the trainer reports at every evaluation; ConfigError otherwise.

    Every metric the trainer reports today is a distance to the real data, so lower is better.
    """
    if name not in METRICS:
        raise ConfigError(f"--objective {name!r}: no metric of that name is reported at evaluations"
                          f"{suggest(name, METRICS)}; use one of {', '.join(METRICS)}")
    return "minimize"


__all__ = ["DEFAULT_OBJECTIVE", "check_objective"]
