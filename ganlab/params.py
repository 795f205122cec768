"""Declared hyperparameters: what a plugin accepts, and how values are checked.

A plugin declares its knobs as :class:`Param` objects. The queue validates
every experiment against them when it is queued, so a typo or an out-of-range
value is refused on the command line, not hours later on the GPU.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ganlab.errors import ConfigError

_TYPES: dict[type, str] = {int: "int", float: "float", str: "str", bool: "bool"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Param:
    """One declared hyperparameter.

    Args:
        name: key used in ``--set name=value`` and in the stored config.
        type: one of ``int``, ``float``, ``str``, ``bool``.
        default: value used when the user gives none; ``None`` with
            ``required=True`` means the user must give one.
        help: one line shown by ``ganlab plugins show``.
        low, high: inclusive bounds for numbers (``None``: unbounded).
        choices: the allowed values, if the set is closed.
        required: the user must give a value (e.g. a folder path).
        is_path: a filesystem path; made absolute when resolved, because the
            worker that runs the experiment may start in another directory.
    """

    name: str
    type: type
    default: Any = None
    help: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] | None = None
    required: bool = False
    is_path: bool = False

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise TypeError(f"Param {self.name!r}: type must be int, float, str or bool, got {self.type!r}")
        if not self.name.isidentifier():
            raise TypeError(f"Param name {self.name!r} must be a Python identifier")
        if self.choices is not None:
            object.__setattr__(self, "choices", tuple(self.choices))
        if self.default is not None:
            # A declaration whose own default is invalid is a plugin bug: fail at import.
            self.coerce(self.default, owner="<declaration>")

    @property
    def type_name(self) -> str:
        return _TYPES[self.type]

    def describe_range(self) -> str:
        """Human text for the allowed values, e.g. ``[0, 1]`` or ``one of a, b``."""
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.low is None and self.high is None:
            return ""
        lo = "-inf" if self.low is None else _bound(self.low)
        hi = "inf" if self.high is None else _bound(self.high)
        return f"[{lo}, {hi}]"

    def coerce(self, value: Any, owner: str) -> Any:
        """Return ``value`` converted to this type, or raise a one-line ConfigError."""
        where = f"{owner}: {self.name}"
        v = self._convert(value, where)
        if self.choices is not None and v not in self.choices:
            raise ConfigError(f"{where}={value!r} is not allowed; use {self.describe_range()}")
        if self.type in (int, float):
            if self.type is float and not math.isfinite(v):
                raise ConfigError(f"{where}={value!r} must be a finite number")
            if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
                raise ConfigError(f"{where}={value!r} is out of range; allowed {self.describe_range()}")
        return v

    def _convert(self, value: Any, where: str) -> Any:
        bad = ConfigError(f"{where}={value!r} is not a valid {self.type_name}")
        if self.type is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                return value.strip().lower() in _TRUE
            raise bad
        if self.type is int:
            if isinstance(value, bool):
                raise bad
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str):
                try:
                    return int(value.strip())
                except ValueError:
                    try:
                        f = float(value)
                    except ValueError:
                        raise bad from None
                    if f.is_integer():
                        return int(f)
            raise bad
        if self.type is float:
            if isinstance(value, bool):
                raise bad
            if isinstance(value, (int, float)):
                return float(value)
            if isinstance(value, str):
                try:
                    return float(value.strip())
                except ValueError:
                    raise bad from None
            raise bad
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise bad
        if self.is_path and value:
            return os.path.abspath(os.path.expanduser(value))
        return value

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type_name,
            "default": self.default,
            "required": self.required,
            "low": self.low,
            "high": self.high,
            "choices": list(self.choices) if self.choices is not None else None,
            "help": self.help,
        }


def _bound(value: float) -> str:
    # Whole bounds in full: 2147483647, not the 2.14748e+09 that :g prints (which is not the bound).
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e16 else f"{value:g}"


def suggest(name: str, candidates: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest candidate, or ``""``."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def resolve_params(declared: Sequence[Param], given: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """Validate ``given`` against ``declared`` and fill in every default.

    Raises ConfigError naming ``owner`` for an unknown key, a bad value or a
    missing required value.
    """
    by_name = {p.name: p for p in declared}
    for key in given:
        if key not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            raise ConfigError(
                f"{owner} has no hyperparameter {key!r}{suggest(key, by_name)} (it accepts: {known})"
            )
    resolved: dict[str, Any] = {}
    for p in declared:
        if p.name in given:
            resolved[p.name] = p.coerce(given[p.name], owner)
        elif p.required and p.default is None:
            raise ConfigError(f"{owner} needs {p.name}: {p.help or 'give it with --set ' + p.name + '=...'}")
        else:
            resolved[p.name] = p.default
    return resolved
