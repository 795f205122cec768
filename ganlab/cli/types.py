"""Click parameter types for the numbers every command shares, bounded by :mod:`ganlab.limits`.

One type per kind of value, so ``queue show``, ``compare``, ``logs`` and the
rest refuse the same ids with the same message, at parse time, before any
database is opened.
"""

from __future__ import annotations

import math
from typing import Any

import click

from ganlab.limits import DB_INT_MAX, MAX_EXPERIMENT_ID, MAX_PRIORITY, MAX_SEED, MIN_PRIORITY

ExperimentId = click.IntRange(1, MAX_EXPERIMENT_ID)
Priority = click.IntRange(MIN_PRIORITY, MAX_PRIORITY)
Seed = click.IntRange(0, MAX_SEED)
# A count whose only bound is that it must fit the database's integers.
Count = click.IntRange(1, DB_INT_MAX)


class Seconds(click.ParamType):
    """A finite number of seconds in ``(0, high]``: NaN and infinities are refused, not compared."""

    name = "seconds"

    def __init__(self, high: float) -> None:
        self.high = high

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"must be a finite number of seconds, got {value}", param, ctx)
        if seconds <= 0:
            self.fail(f"must be > 0, got {seconds}", param, ctx)
        if seconds > self.high:
            self.fail(f"must be at most {self.high:g} seconds, got {seconds:g}", param, ctx)
        return seconds

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "SECONDS"


__all__ = ["Count", "ExperimentId", "Priority", "Seconds", "Seed"]
