"""Search distributions written in ``--set``: ``uniform(a,b)``, ``log(a,b)``, ``int(a,b)``, ``int(a,b,log)``.

A comma list is a categorical distribution under ``--search random|tpe``;
these are the continuous and integer ones. Each is checked against the
declared :class:`~ganlab.params.Param` it samples, so every point a sampler
can draw is a value the plugin accepts.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ganlab.errors import ConfigError
from ganlab.params import Param, suggest

KINDS = ("uniform", "log", "int")
# Only word(number, number[, word]) reads as a distribution: a string value such as a folder
# name with parentheses in it stays an ordinary value.
_CALL = re.compile(r"^\s*([A-Za-z_]\w*)\s*\(\s*([^()]*)\)\s*$")
# Names other libraries give the same ranges (Optuna, Ray Tune, NumPy): pointed to ours.
_ALIASES = {"loguniform": "log", "log_uniform": "log", "reciprocal": "log", "randint": "int", "integer": "int",
            "lograndint": "int", "qrandint": "int"}
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class Distribution:
    """A range a sampler draws one value from: float (uniform or log-uniform) or int (optionally log)."""

    kind: str  # uniform | log | int
    low: float
    high: float
    log: bool = False

    @property
    def is_int(self) -> bool:
        return self.kind == "int"

    def text(self) -> str:
        """As the user writes it."""
        lo, hi = (int(self.low), int(self.high)) if self.is_int else (f"{self.low:g}", f"{self.high:g}")
        return f"{self.kind}({lo},{hi}{',log' if self.is_int and self.log else ''})"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "low": self.low, "high": self.high, "log": self.log}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Distribution:
        return cls(str(d["kind"]), float(d["low"]), float(d["high"]), bool(d.get("log", False)))

    def contains(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and self.low <= value <= self.high

    def check(self, param: Param, owner: str) -> None:
        """ConfigError unless every value this distribution can draw is valid for ``param``."""
        where = f"--set {param.name}={self.text()}"
        if param.type not in (int, float) or param.choices is not None:
            raise ConfigError(f"{where}: {param.name} is a {param.type_name}"
                              f"{' with fixed choices' if param.choices else ''} ({owner}), not a number range; "
                              "list its values instead (a comma list is sampled as a category)")
        if param.type is int and not self.is_int:
            raise ConfigError(f"{where}: {param.name} is an integer; sample it with int({_bound(self.low)},"
                              f"{_bound(self.high)})")
        for bound in (self.low, self.high):
            if (param.low is not None and bound < param.low) or (param.high is not None and bound > param.high):
                raise ConfigError(f"{where}: the bound {_bound(bound)} is outside the range declared for "
                                  f"{param.name}, {param.describe_range()} ({owner}); narrow the distribution")


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e16 else f"{value:g}"


def looks_like_distribution(value: Any) -> bool:
    """Whether a ``--set`` value is written as ``name(numbers)`` (a known distribution or a misspelt one)."""
    if not isinstance(value, str):
        return False
    m = _CALL.match(value)
    if not m:
        return False
    args = [a.strip() for a in m.group(2).split(",")]
    return bool(args) and bool(_NUMBER.match(args[0]))


def parse_distribution(key: str, value: str) -> Distribution:
    """``"log(1e-5,1e-3)"`` -> Distribution; ConfigError naming what is wrong and the accepted forms."""
    m = _CALL.match(value)
    forms = "uniform(a,b), log(a,b), int(a,b) or int(a,b,log)"
    where = f"--set {key}={value.strip()}"
    if not m:
        raise ConfigError(f"{where} is not a distribution; write {forms}")
    kind, args = m.group(1), [a.strip() for a in m.group(2).split(",")]
    if kind not in KINDS:
        hint = f"; did you mean {_ALIASES[kind]!r}?" if kind in _ALIASES else suggest(kind, KINDS)
        raise ConfigError(f"{where}: unknown distribution {kind!r} (use {forms}){hint}")
    log = False
    if kind == "int" and len(args) == 3:
        if args[2] != "log":
            raise ConfigError(f"{where}: the third argument of int() can only be log, as in int(16,256,log)")
        log, args = True, args[:2]
    if len(args) != 2 or not all(_NUMBER.match(a) for a in args):
        raise ConfigError(f"{where} needs two numbers, a low and a high bound; write {forms}")
    low, high = float(args[0]), float(args[1])
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ConfigError(f"{where}: bounds must be finite numbers")
    if kind == "int" and not (low.is_integer() and high.is_integer()):
        raise ConfigError(f"{where}: int() takes whole-number bounds")
    if low >= high:
        raise ConfigError(f"{where}: the low bound must be below the high bound")
    if (kind == "log" or log) and low <= 0:
        raise ConfigError(f"{where}: a log range needs a low bound above 0")
    return Distribution(kind, low, high, log=log or kind == "log")


__all__ = ["KINDS", "Distribution", "looks_like_distribution", "parse_distribution"]
